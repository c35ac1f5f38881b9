package mediafake

import (
	"bytes"
	"context"
	"fmt"
	"image"
	_ "image/gif"  // formats the fake recognises
	_ "image/jpeg" // formats the fake recognises
	_ "image/png"  // formats the fake recognises
	"io"

	mediaport "github.com/acme/postsvc/ports/media"
)

// Imaging is a media.Imaging for use-case tests: it recognises PNG, JPEG and GIF with the
// standard library's header decoders, checks the pixel limit, and "cleans" by copying the
// bytes unchanged. Thumbnail writes a short marker that names the source's size. The real
// adapter (adapters/media/imaging) is tested on its own.
type Imaging struct{}

var _ mediaport.Imaging = Imaging{}

// maxBytes bounds what the fake reads of one file.
const maxBytes = 64 << 20

// Clean implements media.Imaging.
func (Imaging) Clean(ctx context.Context, r io.Reader, w io.Writer, limits mediaport.CleanLimits) (mediaport.ImageInfo, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxBytes))
	if err != nil {
		return mediaport.ImageInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return mediaport.ImageInfo{}, err
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return mediaport.ImageInfo{}, fmt.Errorf("mediafake: %w: %w", mediaport.ErrUnsupportedFormat, err)
	}
	if limits.MaxPixels > 0 && int64(cfg.Width)*int64(cfg.Height) > limits.MaxPixels {
		return mediaport.ImageInfo{}, fmt.Errorf("mediafake: %w: %dx%d", mediaport.ErrTooManyPixels, cfg.Width, cfg.Height)
	}
	if _, err := w.Write(data); err != nil {
		return mediaport.ImageInfo{}, err
	}
	return mediaport.ImageInfo{Format: format, ContentType: "image/" + format, Width: cfg.Width, Height: cfg.Height, Orientation: 1}, nil
}

// Thumbnail implements media.Imaging. Like the real adapter, it writes a placeholder (a
// marker that says so) for a file whose header decodes but whose pixels do not.
func (Imaging) Thumbnail(_ context.Context, r io.Reader, w io.Writer, _ int) (mediaport.Thumbnail, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxBytes))
	if err != nil {
		return mediaport.Thumbnail{}, err
	}
	_, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return mediaport.Thumbnail{}, fmt.Errorf("mediafake: %w: %w", mediaport.ErrUnsupportedFormat, err)
	}
	t := mediaport.Thumbnail{ContentType: "image/png"}
	if format == "jpeg" {
		t.ContentType = "image/jpeg"
	}
	marker := fmt.Sprintf("thumbnail of %d bytes", len(data))
	if _, _, err := image.Decode(bytes.NewReader(data)); err != nil {
		t.Placeholder = true
		marker = fmt.Sprintf("placeholder for %d bytes", len(data))
	}
	if _, err := io.WriteString(w, marker); err != nil {
		return mediaport.Thumbnail{}, err
	}
	return t, nil
}
