// Package image is the image aggregate of the media context: a picture one owner uploaded,
// whose cleaned bytes live in object storage under a key the aggregate derives, with what
// describes it (format, size, hash) and what its owner says about it (visibility,
// description, tags).
package image

import (
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/identity"
)

// Limits of an image, from the contract.
const (
	// MaxPixels bounds width × height: larger images are refused from their header
	// (decompression bombs).
	MaxPixels = 50_000_000
	// ThumbnailSide is the longer side of a thumbnail, at most.
	ThumbnailSide = 256
)

// The media context's failures; each describes itself (kind, stable code, message).
var (
	// ErrNotFound: no such image, or one the caller may not see (another user's private
	// image answers the same, so ids cannot be probed).
	ErrNotFound = domain.NewError(domain.KindNotFound, "image_not_found", "There is no such image.")
	// ErrQuotaExceeded: storing the upload would take the owner past their quota.
	ErrQuotaExceeded = domain.NewError(domain.KindForbidden, "quota_exceeded",
		"Storing these images would exceed your storage quota; delete some images first. Nothing was stored.")
)

// ID identifies an image: opaque and time-ordered, so sorting by ID sorts newest last.
type ID string

// Format is a stored image's format, recognised from its bytes.
type Format string

// The accepted formats.
const (
	FormatPNG  Format = "png"
	FormatJPEG Format = "jpeg"
	FormatGIF  Format = "gif"
	FormatWebP Format = "webp"
)

// ContentType is the media type the format is served with.
func (f Format) ContentType() string {
	switch f {
	case FormatPNG:
		return "image/png"
	case FormatJPEG:
		return "image/jpeg"
	case FormatGIF:
		return "image/gif"
	case FormatWebP:
		return "image/webp"
	}
	return "application/octet-stream"
}

// ParseFormat accepts the formats above.
func ParseFormat(raw string) (Format, error) {
	switch f := Format(raw); f {
	case FormatPNG, FormatJPEG, FormatGIF, FormatWebP:
		return f, nil
	}
	return "", errors.New("image: unknown format " + raw)
}

// Content describes a cleaned file as it was stored: what the service learnt from its bytes.
type Content struct {
	Format Format
	Bytes  int64
	Width  int
	Height int
	// SHA256 is the hash of the stored bytes, 32 bytes.
	SHA256 []byte
}

func (c Content) validate() error {
	switch {
	case c.Bytes <= 0:
		return errors.New("image: empty content")
	case c.Width <= 0 || c.Height <= 0 || int64(c.Width)*int64(c.Height) > MaxPixels:
		return errors.New("image: dimensions out of range")
	case len(c.SHA256) != 32:
		return errors.New("image: the hash is not SHA-256")
	}
	_, err := ParseFormat(string(c.Format))
	return err
}

// Image is one stored picture of one owner.
type Image struct {
	id        ID
	owner     identity.UserID
	filename  string
	content   Content
	details   Details
	thumbnail bool
	createdAt time.Time
}

// New makes the image of a file that was cleaned and stored. The filename is cleaned
// (CleanFilename); details were validated by ParseDetails.
func New(id ID, owner identity.UserID, filename string, c Content, d Details, now time.Time) (*Image, error) {
	if id == "" || owner == "" || !PlausibleID(string(id)) {
		return nil, errors.New("image: empty or implausible id or owner")
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	c.SHA256 = append([]byte(nil), c.SHA256...)
	return &Image{id: id, owner: owner, filename: CleanFilename(filename, c.Format), content: c, details: d.clone(), createdAt: now.UTC()}, nil
}

// Rehydrate rebuilds an image read from the service's own storage without validating it
// again.
func Rehydrate(id ID, owner identity.UserID, filename string, c Content, d Details, thumbnail bool, createdAt time.Time) *Image {
	return &Image{id: id, owner: owner, filename: filename, content: c, details: d, thumbnail: thumbnail, createdAt: createdAt.UTC()}
}

func (i *Image) ID() ID                           { return i.id }
func (i *Image) Owner() identity.UserID           { return i.owner }
func (i *Image) Filename() string                 { return i.filename }
func (i *Image) Content() Content                 { return i.content }
func (i *Image) Details() Details                 { return i.details.clone() }
func (i *Image) Visibility() Visibility           { return i.details.Visibility }
func (i *Image) HasThumbnail() bool               { return i.thumbnail }
func (i *Image) CreatedAt() time.Time             { return i.createdAt }
func (i *Image) SHA256Hex() string                { return hex.EncodeToString(i.content.SHA256) }
func (i *Image) ContentKey() string               { return ContentKey(i.owner, i.id) }
func (i *Image) ThumbnailKey() string             { return ThumbnailKey(i.owner, i.id) }
func (i *Image) IsPublic() bool                   { return i.details.Visibility == Public }
func (i *Image) VisibleTo(u identity.UserID) bool { return i.IsPublic() || i.owner == u }

// Update applies a change of details.
func (i *Image) Update(c Change) { i.details = c.Apply(i.details) }

// Object keys. An image's objects live under its owner's prefix, so that deleting an owner
// can remove every object of theirs by listing one prefix, and under the image's id, so that
// the sweep can tell which image an object belongs to.
const (
	// ObjectPrefix is where every media object lives.
	ObjectPrefix = "media/"
	thumbSuffix  = ".thumb"
)

// OwnerPrefix is the prefix of every object of owner.
func OwnerPrefix(owner identity.UserID) string { return ObjectPrefix + string(owner) + "/" }

// ContentKey is where an image's cleaned bytes are stored.
func ContentKey(owner identity.UserID, id ID) string { return OwnerPrefix(owner) + string(id) }

// ThumbnailKey is where an image's thumbnail is stored.
func ThumbnailKey(owner identity.UserID, id ID) string { return ContentKey(owner, id) + thumbSuffix }

// ParseKey tells which image an object key belongs to; false for a key that is not of an
// image's (the sweep leaves those alone).
func ParseKey(key string) (owner identity.UserID, id ID, ok bool) {
	rest, found := strings.CutPrefix(key, ObjectPrefix)
	if !found {
		return "", "", false
	}
	o, name, found := strings.Cut(rest, "/")
	if !found || o == "" {
		return "", "", false
	}
	name = strings.TrimSuffix(name, thumbSuffix)
	if !PlausibleID(name) {
		return "", "", false
	}
	return identity.UserID(o), ID(name), true
}

// MaxIDBytes bounds an image id as the service makes them.
const MaxIDBytes = 64

// PlausibleID reports whether raw could be an image id the service made: 1 to 64 characters
// of A-Z a-z 0-9 - _. Anything else is answered 404 without a database read.
func PlausibleID(raw string) bool {
	if raw == "" || len(raw) > MaxIDBytes {
		return false
	}
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}
