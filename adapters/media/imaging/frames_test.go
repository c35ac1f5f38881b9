package imaging

import (
	"bytes"
	"context"
	"errors"
	"image"
	"io"
	"strings"
	"testing"

	"github.com/acme/postsvc/ports/media"
)

// TestCleanBoundsTheFramesOfAnAnimatedGIF: each frame of a GIF is within the pixel limit, but
// checking a frame decodes it, so the frames together are bounded too (FramePixelsFactor
// times the limit): at the bound the file is accepted, one frame past it is refused as a
// decompression bomb (ErrTooManyPixels, 422), not as a broken file. Thumbnail, which decodes
// the first frame alone, still reads such a file (one stored before the bound).
func TestCleanBoundsTheFramesOfAnAnimatedGIF(t *testing.T) {
	const side = 10
	maxPixels := int64(side * side)
	frames := func(n int) []byte {
		fs := make([]image.Image, n)
		for i := range fs {
			fs[i] = pattern(side, side)
		}
		return encodeGIF(t, fs...)
	}
	m := New(Config{TempDir: t.TempDir()})
	limits := media.CleanLimits{MaxPixels: maxPixels}

	atBound := frames(FramePixelsFactor)
	info, err := m.Clean(context.Background(), bytes.NewReader(atBound), io.Discard, limits)
	if err != nil || info.Width != side || info.Height != side {
		t.Fatalf("%d frames of %d pixels: %+v, %v; want it accepted", FramePixelsFactor, maxPixels, info, err)
	}

	over := frames(FramePixelsFactor + 1)
	_, err = m.Clean(context.Background(), bytes.NewReader(over), io.Discard, limits)
	if !errors.Is(err, media.ErrTooManyPixels) || errors.Is(err, media.ErrUnsupportedFormat) {
		t.Fatalf("%d frames of %d pixels: %v; want ErrTooManyPixels", FramePixelsFactor+1, maxPixels, err)
	}
	if !strings.Contains(err.Error(), "frames hold over 400 pixels together") {
		t.Fatalf("%q does not say what is wrong", err)
	}

	var thumb bytes.Buffer
	if _, err := New(Config{ThumbnailMaxPixels: maxPixels}).Thumbnail(context.Background(), bytes.NewReader(over), &thumb, 256); err != nil {
		t.Fatalf("thumbnail of the first frame: %v", err)
	}
}
