// Package post is the text post aggregate.
package post

import (
	"errors"
	"time"
	"unicode/utf8"

	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/identity"
)

// MaxTextBytes is the largest post text: 1 MiB of UTF-8, counted in bytes.
const MaxTextBytes = 1 << 20

// The posts context's failures; each describes itself (kind, stable code, message).
var (
	// ErrNotFound: no such post for this author. Another author's post answers the same, so
	// ids cannot be probed.
	ErrNotFound = domain.NewError(domain.KindNotFound, "post_not_found", "There is no such post.")
	// ErrTextTooLarge: the text is over MaxTextBytes.
	ErrTextTooLarge = domain.TooLarge("A post's text is at most 1048576 bytes (1 MiB) of UTF-8.")
	// ErrQuotaExceeded: storing the post would take its author's post texts past their quota
	// (APP_POSTS_QUOTA_BYTES).
	ErrQuotaExceeded = domain.NewError(domain.KindForbidden, "quota_exceeded",
		"Storing this post would exceed your post storage quota; delete some posts first. Nothing was stored.")
)

// ID identifies a post. IDs are time-ordered: sorting by ID sorts by creation time, which is
// what makes cursor pagination stable while posts are being added.
type ID string

// Post is a piece of text owned by one author. It is immutable once created.
type Post struct {
	id        ID
	authorID  identity.UserID
	text      string
	createdAt time.Time
}

// ValidateText checks the text invariant: 1 to MaxTextBytes bytes of valid UTF-8. Text over
// the limit is ErrTextTooLarge (413), not a validation error, because clients treat "too big"
// differently from "wrong".
func ValidateText(text string) error {
	switch {
	case text == "":
		return domain.Invalid("text", "must not be empty")
	case len(text) > MaxTextBytes:
		return ErrTextTooLarge
	case !utf8.ValidString(text):
		return domain.Invalid("text", "must be valid UTF-8")
	}
	return nil
}

// New creates a post. The text is kept byte for byte; nothing is trimmed or normalised.
func New(id ID, author identity.UserID, text string, now time.Time) (*Post, error) {
	if id == "" || author == "" {
		return nil, errors.New("post: empty id or author")
	}
	if err := ValidateText(text); err != nil {
		return nil, err
	}
	return &Post{id: id, authorID: author, text: text, createdAt: now.UTC()}, nil
}

// Rehydrate rebuilds a post read from the service's own storage without validating it again.
func Rehydrate(id ID, author identity.UserID, text string, createdAt time.Time) *Post {
	return &Post{id: id, authorID: author, text: text, createdAt: createdAt.UTC()}
}

func (p *Post) ID() ID                    { return p.id }
func (p *Post) AuthorID() identity.UserID { return p.authorID }
func (p *Post) Text() string              { return p.text }
func (p *Post) CreatedAt() time.Time      { return p.createdAt }
