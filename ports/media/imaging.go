// Package media holds the ports of the image repository context.
package media

import (
	"context"
	"errors"
	"io"
)

// Image formats the repository accepts, recognised from the bytes.
const (
	FormatPNG  = "png"
	FormatJPEG = "jpeg"
	FormatGIF  = "gif"
	FormatWebP = "webp"
)

var (
	// ErrUnsupportedFormat: the bytes are not PNG, JPEG, GIF or WebP, or do not decode as the
	// format they claim (a truncated or corrupt header, an impossible size). The client is
	// answered 415.
	ErrUnsupportedFormat = errors.New("not a supported image")
	// ErrTooManyPixels: decoding the file would take more than the limits allow: the header
	// declares more pixels than the limit (a decompression bomb, detected before the pixel
	// data is read), or the frames or scans together pass over too many pixels. Its text
	// reads after the file's name ("x.png" is too large to decode: ...). The client is
	// answered 422.
	ErrTooManyPixels = errors.New("too large to decode")
)

// ImageInfo is what cleaning an image learnt about it.
type ImageInfo struct {
	Format      string // one of the Format constants
	ContentType string // image/png, image/jpeg, image/gif, image/webp
	Width       int
	Height      int
	// Orientation is the EXIF orientation (1 to 8) kept in the cleaned image, 1 when none.
	// Width and Height are as stored, before orientation is applied.
	Orientation int
}

// CleanLimits bounds what Clean accepts.
type CleanLimits struct {
	// MaxPixels bounds width × height (50 megapixels in the contract).
	MaxPixels int64
}

// Imaging reads and writes image files without cgo.
type Imaging interface {
	// Clean reads one image file from r and writes it to w without its metadata: EXIF, XMP,
	// IPTC, comments and text chunks are dropped, the compressed pixel data is copied byte
	// for byte (never re-encoded), and an EXIF orientation other than 1 survives in a minimal
	// EXIF block that holds nothing else. It streams: memory does not grow with the file.
	// The format is recognised from the bytes; the header is decoded to learn and check the
	// dimensions before the pixel data is read. Errors wrap ErrUnsupportedFormat,
	// ErrTooManyPixels, or are r's or w's.
	Clean(ctx context.Context, r io.Reader, w io.Writer, limits CleanLimits) (ImageInfo, error)
	// Thumbnail decodes a cleaned image from r, applies its orientation, scales it to fit
	// within maxSide × maxSide (never enlarging) and encodes it to w: JPEG for JPEG
	// sources, PNG otherwise.
	//
	// Clean cannot afford to decode every format's pixels in full (JPEG scan data, the alpha
	// of a lossy WebP), so an image it accepted may still fail to decode here: a JPEG scan
	// cut short before its end marker, say. Thumbnail then writes a placeholder of the same
	// size and type instead, a flat grey image, and says so in the result: retrying could
	// not do better, and the image's own content is still served as uploaded.
	Thumbnail(ctx context.Context, r io.Reader, w io.Writer, maxSide int) (Thumbnail, error)
}

// Thumbnail is what Imaging.Thumbnail wrote.
type Thumbnail struct {
	ContentType string // image/jpeg or image/png
	// Placeholder: the image's pixel data did not decode, and the thumbnail is a flat grey
	// image of the size and type the real one would have had.
	Placeholder bool
}
