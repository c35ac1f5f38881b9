package imaging

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/color/palette"
	"image/draw"
	"image/jpeg"
	"image/png"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	xdraw "golang.org/x/image/draw"

	"github.com/acme/postsvc/ports/media"
)

func thumbnail(t *testing.T, m *Imaging, in []byte, maxSide int) (image.Image, string, string) {
	t.Helper()
	var out bytes.Buffer
	made, err := m.Thumbnail(context.Background(), bytes.NewReader(in), &out, maxSide)
	if err != nil {
		t.Fatalf("Thumbnail: %v", err)
	}
	if made.Placeholder {
		t.Fatal("a placeholder for an image that decodes")
	}
	img, format, err := image.Decode(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatalf("the thumbnail does not decode: %v", err)
	}
	return img, made.ContentType, format
}

func isRed(c color.Color) bool {
	r, g, b, _ := c.RGBA()
	return r > 0xc000 && g < 0x4000 && b < 0x4000
}

func TestThumbnailFitsAndTurns(t *testing.T) {
	big := pattern(600, 360)
	bigPNG := encodePNG(t, big)
	bigJPEG := encodeJPEG(t, big)
	be, le := binary.BigEndian, binary.LittleEndian
	cases := []struct {
		name        string
		in          []byte
		contentType string
		w, h        int
		// corner where the red block shows once oriented: 0 top-left, 1 top-right,
		// 2 bottom-right, 3 bottom-left.
		corner int
	}{
		{"png", bigPNG, "image/png", 256, 154, 0},
		{"png orientation 6", pngWithMetadata(bigPNG, 6), "image/png", 154, 256, 1},
		{"jpeg", bigJPEG, "image/jpeg", 256, 154, 0},
		{"jpeg orientation 6", jpegWithMetadata(bigJPEG, be, 6), "image/jpeg", 154, 256, 1},
		{"jpeg orientation 3", jpegWithMetadata(bigJPEG, le, 3), "image/jpeg", 256, 154, 2},
		{"jpeg orientation 8", jpegWithMetadata(bigJPEG, le, 8), "image/jpeg", 154, 256, 3},
		{"jpeg orientation 2", jpegWithMetadata(bigJPEG, le, 2), "image/jpeg", 256, 154, 1},
		{"jpeg orientation 4", jpegWithMetadata(bigJPEG, le, 4), "image/jpeg", 256, 154, 3},
		{"jpeg orientation 5", jpegWithMetadata(bigJPEG, le, 5), "image/jpeg", 154, 256, 0},
		{"jpeg orientation 7", jpegWithMetadata(bigJPEG, le, 7), "image/jpeg", 154, 256, 2},
		{"gif first frame", encodeGIF(t, pattern(400, 300), pattern(100, 100)), "image/png", 256, 192, 0},
		{"jpeg shrunk first", encodeJPEG(t, pattern(1600, 960)), "image/jpeg", 256, 154, 0},
		{"jpeg shrunk first, orientation 6", jpegWithMetadata(encodeJPEG(t, pattern(1600, 960)), be, 6), "image/jpeg", 154, 256, 1},
		{"png shrunk first, orientation 8", pngWithMetadata(encodePNG(t, pattern(1600, 960)), 8), "image/png", 154, 256, 3},
		{"small png not enlarged", encodePNG(t, pattern(120, 80)), "image/png", 120, 80, 0},
		{"small jpeg orientation 6 not enlarged", jpegWithMetadata(encodeJPEG(t, pattern(120, 80)), be, 6), "image/jpeg", 80, 120, 1},
		{"webp lossy", readFixture(t, "blue-purple-pink.lossy.webp"), "image/png", 150, 100, -1},
		{"webp orientation 6", webpWithMetadata(t, readFixture(t, "yellow_rose.lossy-with-alpha.webp"), le, 6), "image/png", 193, 256, -1},
	}
	m := New(Config{TempDir: t.TempDir()})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cleaned, _, err := cleanBytes(t, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			img, ct, format := thumbnail(t, m, cleaned, 256)
			if ct != tc.contentType || "image/"+format != ct {
				t.Fatalf("content type %s, encoded as %s, want %s", ct, format, tc.contentType)
			}
			if b := img.Bounds(); b.Dx() != tc.w || b.Dy() != tc.h {
				t.Fatalf("thumbnail %dx%d, want %dx%d", b.Dx(), b.Dy(), tc.w, tc.h)
			}
			if tc.corner < 0 {
				return
			}
			b := img.Bounds()
			corners := []image.Point{{3, 3}, {b.Dx() - 4, 3}, {b.Dx() - 4, b.Dy() - 4}, {3, b.Dy() - 4}}
			for i, p := range corners {
				if red := isRed(img.At(p.X, p.Y)); red != (i == tc.corner) {
					t.Errorf("corner %d red: %v, want the red block in corner %d", i, red, tc.corner)
				}
			}
		})
	}
}

func TestThumbnailRefuses(t *testing.T) {
	ctx := context.Background()
	in := encodePNG(t, pattern(100, 100))
	var out bytes.Buffer
	if _, err := New(Config{ThumbnailMaxPixels: 9999}).Thumbnail(ctx, bytes.NewReader(in), &out, 256); !errors.Is(err, media.ErrTooManyPixels) {
		t.Fatalf("over the pixel limit: %v", err)
	}
	if _, err := New(Config{}).Thumbnail(ctx, bytes.NewReader([]byte("not an image")), &out, 256); !errors.Is(err, media.ErrUnsupportedFormat) {
		t.Fatalf("not an image: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := New(Config{}).Thumbnail(cancelled, bytes.NewReader(in), &out, 256); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

// TestThumbnailPlaceholderForPixelsThatDoNotDecode: a JPEG whose scan is cut short before
// its end marker passes Clean (which does not decode JPEG scan data) and fails the decoder.
// Its thumbnail is a flat grey placeholder of the size and type the real one would have
// had, orientation included, and the result says it is one; it used to be an error, which
// every request for the thumbnail answered with a 500.
func TestThumbnailPlaceholderForPixelsThatDoNotDecode(t *testing.T) {
	cut := func(src []byte) []byte {
		sos := bytes.Index(src, []byte{0xff, 0xda})
		return append(bytes.Clone(src[:sos+40]), 0xff, 0xd9)
	}
	jpg := encodeJPEG(t, pattern(600, 360))
	m := New(Config{TempDir: t.TempDir()})
	for _, tc := range []struct {
		name string
		in   []byte
		w, h int
	}{
		{"jpeg", cut(jpg), 256, 154},
		{"jpeg orientation 6", cut(jpegWithMetadata(jpg, binary.BigEndian, 6)), 154, 256},
		{"small jpeg not enlarged", cut(encodeJPEG(t, pattern(120, 80))), 120, 80},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cleaned, _, err := cleanBytes(t, tc.in)
			if err != nil {
				t.Fatalf("Clean refused the file (%v): the case tests what Clean lets through", err)
			}
			if _, _, err := image.Decode(bytes.NewReader(cleaned)); err == nil {
				t.Fatal("the cleaned file decodes: not a case of pixels that do not decode")
			}
			var out bytes.Buffer
			made, err := m.Thumbnail(context.Background(), bytes.NewReader(cleaned), &out, 256)
			if err != nil {
				t.Fatalf("Thumbnail: %v", err)
			}
			if !made.Placeholder || made.ContentType != "image/jpeg" {
				t.Fatalf("result %+v, want a JPEG placeholder", made)
			}
			img, format, err := image.Decode(bytes.NewReader(out.Bytes()))
			if err != nil || format != "jpeg" {
				t.Fatalf("the placeholder does not decode as JPEG: %q %v", format, err)
			}
			if b := img.Bounds(); b.Dx() != tc.w || b.Dy() != tc.h {
				t.Fatalf("placeholder %dx%d, want %dx%d", b.Dx(), b.Dy(), tc.w, tc.h)
			}
			for _, p := range []image.Point{{0, 0}, {tc.w / 2, tc.h / 2}, {tc.w - 1, tc.h - 1}} {
				r, g, b, _ := img.At(p.X, p.Y).RGBA()
				if r>>8 < 0xc8 || r>>8 > 0xd8 || r != g || g != b {
					t.Fatalf("pixel %v is %d,%d,%d, want the placeholder's grey", p, r>>8, g>>8, b>>8)
				}
			}
		})
	}
}

func TestFit(t *testing.T) {
	for _, tc := range []struct{ w, h, side, ww, wh int }{
		{1000, 600, 256, 256, 154},
		{600, 1000, 256, 154, 256},
		{256, 256, 256, 256, 256},
		{257, 1, 256, 256, 1},
		{1, 10000, 256, 1, 256},
		{10, 10, 256, 10, 10},
	} {
		if w, h := fit(tc.w, tc.h, tc.side); w != tc.ww || h != tc.wh {
			t.Errorf("fit(%d, %d, %d) = %d, %d, want %d, %d", tc.w, tc.h, tc.side, w, h, tc.ww, tc.wh)
		}
	}
}

// TestShrinkAveragesBlocks: each pixel of a shrunk image is the rounded mean of its kx×ky
// block, and of what is left of a block at the right and bottom edges, whatever the tiles
// the source is converted in.
func TestShrinkAveragesBlocks(t *testing.T) {
	src := image.NewRGBA(image.Rect(10, 20, 23, 27)) // 13×7, not at the origin
	for i := range src.Pix {
		src.Pix[i] = uint8(i * 37 % 251)
	}
	defer func(p int) { shrinkTilePixels = p }(shrinkTilePixels)
	for _, tile := range []int{1 << 18, 1, 12} { // one tile; a block a tile; two blocks of 2×3
		shrinkTilePixels = tile
		for _, k := range [][2]int{{2, 2}, {2, 3}, {3, 1}, {1, 4}, {5, 2}} {
			kx, ky := k[0], k[1]
			got := shrink(src, kx, ky)
			ow, oh := (13+kx-1)/kx, (7+ky-1)/ky
			if b := got.Bounds(); b.Dx() != ow || b.Dy() != oh {
				t.Fatalf("%d×%d: shrunk to %v, want %d×%d", kx, ky, b, ow, oh)
			}
			for oy := range oh {
				for ox := range ow {
					for c := range 4 {
						var sum, n int
						for y := oy * ky; y < min(oy*ky+ky, 7); y++ {
							for x := ox * kx; x < min(ox*kx+kx, 13); x++ {
								sum += int(src.Pix[src.PixOffset(10+x, 20+y)+c])
								n++
							}
						}
						want := uint8((sum + n/2) / n)
						if g := got.Pix[got.PixOffset(ox, oy)+c]; g != want {
							t.Errorf("tile %d, %d×%d: pixel (%d,%d) channel %d = %d, want %d (mean of %d)", tile, kx, ky, ox, oy, c, g, want, n)
						}
					}
				}
			}
		}
	}
}

// TestThumbnailOfANarrowImageIsCheap: a PNG one pixel wide (or high) and millions long, within
// the pixel limit, is shrunk along its long axis before Catmull-Rom runs. Catmull-Rom over the
// whole of an outside probe's 1 × 50,000,000 PNG took 3 to 5 GB for its weights; here the
// 4,000,000-pixel one took about 256 MB that way, against the decoded image (4 MB) and a
// few MB now.
func TestThumbnailOfANarrowImageIsCheap(t *testing.T) {
	if testing.Short() {
		t.Skip("decodes 4-megapixel images")
	}
	for _, size := range [][2]int{{1, 4_000_000}, {4_000_000, 1}, {3, 1_500_000}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			src := image.NewGray(image.Rect(0, 0, size[0], size[1]))
			for i := range src.Pix {
				src.Pix[i] = uint8(i % 253)
			}
			var file bytes.Buffer
			if err := png.Encode(&file, src); err != nil {
				t.Fatal(err)
			}
			m := New(Config{})
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			var out bytes.Buffer
			if _, err := m.Thumbnail(context.Background(), bytes.NewReader(file.Bytes()), &out, 256); err != nil {
				t.Fatal(err)
			}
			runtime.ReadMemStats(&after)
			thumb, err := png.Decode(&out)
			if err != nil {
				t.Fatal(err)
			}
			tw, th := fit(size[0], size[1], 256)
			if b := thumb.Bounds(); b.Dx() != tw || b.Dy() != th {
				t.Fatalf("thumbnail %v, want %d×%d", b, tw, th)
			}
			const bound = 48 << 20
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > bound {
				t.Fatalf("the thumbnail allocated %d MB, want under %d MB", alloc>>20, bound>>20)
			} else {
				t.Logf("allocated %d KB", alloc>>10)
			}
		})
	}
}

// TestShrinkReadsEveryImageType: whatever the decoder returned (YCbCr from JPEG, NRGBA from
// PNG, gray, paletted), shrinking it gives what shrinking its RGBA conversion gives.
func TestShrinkReadsEveryImageType(t *testing.T) {
	nrgba := pattern(301, 203)
	jpegImg, err := jpeg.Decode(bytes.NewReader(encodeJPEG(t, nrgba)))
	if err != nil {
		t.Fatal(err)
	}
	gray := image.NewGray(nrgba.Bounds())
	draw.Draw(gray, gray.Bounds(), nrgba, image.Point{}, draw.Src)
	paletted := image.NewPaletted(nrgba.Bounds(), palette.Plan9)
	draw.Draw(paletted, paletted.Bounds(), nrgba, image.Point{}, draw.Src)
	for name, src := range map[string]image.Image{"ycbcr": jpegImg, "nrgba": nrgba, "gray": gray, "paletted": paletted} {
		rgba := image.NewRGBA(src.Bounds())
		draw.Draw(rgba, rgba.Bounds(), src, src.Bounds().Min, draw.Src)
		for _, k := range []int{2, 3, 7} {
			if got, want := shrink(src, k, k), shrink(rgba, k, k); !bytes.Equal(got.Pix, want.Pix) || got.Rect != want.Rect {
				t.Errorf("%s, k=%d: differs from shrinking its RGBA conversion", name, k)
			}
		}
	}
}

// TestShrinkingFirstLooksLikeScalingDirectly: a thumbnail made by shrinking first differs
// from Catmull-Rom over the whole source by less than 2 levels of 255 on average, on an image
// with smooth gradients and a fine texture.
func TestShrinkingFirstLooksLikeScalingDirectly(t *testing.T) {
	src := pattern(1600, 960)
	got, ok := scale(src, 256, 1).(*image.RGBA)
	if !ok {
		t.Fatal("scale did not return RGBA")
	}
	want := image.NewRGBA(got.Bounds())
	xdraw.CatmullRom.Scale(want, want.Bounds(), src, src.Bounds(), xdraw.Src, nil)
	var diff int
	for i := range got.Pix {
		d := int(got.Pix[i]) - int(want.Pix[i])
		diff += max(d, -d)
	}
	if mean := float64(diff) / float64(len(got.Pix)); mean >= 2 {
		t.Fatalf("mean difference %.2f levels from Catmull-Rom over the whole source", mean)
	}
}

// TestThumbnailsShareTheDecodeBudget: a thumbnail waits while the decode budget is spent
// (each decode takes its estimated size, at most the whole budget) and proceeds once it is
// given back, so two large images are never decoded at once; a small one passes beside what
// is held.
func TestThumbnailsShareTheDecodeBudget(t *testing.T) {
	m := New(Config{DecodeMemory: 1 << 20})
	big := encodePNG(t, pattern(1024, 1024)) // 8 MiB estimated: the whole budget
	small := encodePNG(t, pattern(16, 16))   // 2 KiB estimated
	release, err := m.acquireDecode(context.Background(), 1<<20-4<<10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Thumbnail(context.Background(), bytes.NewReader(small), io.Discard, 256); err != nil {
		t.Fatalf("a small thumbnail beside a held budget: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := m.Thumbnail(ctx, bytes.NewReader(big), io.Discard, 256); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a large thumbnail while the budget is held: %v, want it to wait until its deadline", err)
	}
	release()
	if _, err := m.Thumbnail(context.Background(), bytes.NewReader(big), io.Discard, 256); err != nil {
		t.Fatalf("once the budget is back: %v", err)
	}
}

// jpegWithScans returns a baseline JPEG whose one scan is repeated n times: what the cleaner
// counts (it does not decode scan data), in a file small enough for a test.
func jpegWithScans(t *testing.T, n int) []byte {
	t.Helper()
	src := encodeJPEG(t, pattern(64, 48))
	sos := bytes.Index(src, []byte{0xff, 0xda})
	if sos < 0 || !bytes.HasSuffix(src, []byte{0xff, 0xd9}) {
		t.Fatal("no scan in the encoded JPEG")
	}
	scan := src[sos : len(src)-2]
	out := append([]byte{}, src[:sos]...)
	for range n {
		out = append(out, scan...)
	}
	return append(out, 0xff, 0xd9)
}

// TestJPEGScansAreBounded: an upload of a JPEG with more than MaxJPEGScans scans is refused
// as too large to decode (each scan is a pass over every block of the image: an outside
// probe's 245 KB file of 2,000 scans held a thumbnail slot for 40 s), one with MaxJPEGScans is
// not; a stored file over the limit (uploaded before it) gets a placeholder thumbnail rather
// than a decode.
func TestJPEGScansAreBounded(t *testing.T) {
	m := New(Config{})
	if _, err := m.Clean(context.Background(), bytes.NewReader(jpegWithScans(t, MaxJPEGScans)), io.Discard, media.CleanLimits{}); err != nil {
		t.Fatalf("%d scans: %v", MaxJPEGScans, err)
	}
	over := jpegWithScans(t, MaxJPEGScans+1)
	_, err := m.Clean(context.Background(), bytes.NewReader(over), io.Discard, media.CleanLimits{})
	if !errors.Is(err, media.ErrTooManyPixels) || !strings.Contains(err.Error(), "more than 100 scans") {
		t.Fatalf("%d scans: %v, want too large to decode for its scans", MaxJPEGScans+1, err)
	}
	var out bytes.Buffer
	thumb, err := m.Thumbnail(context.Background(), bytes.NewReader(over), &out, 256)
	if err != nil || !thumb.Placeholder || thumb.ContentType != "image/jpeg" {
		t.Fatalf("thumbnail of a stored file over the limit: %+v, %v, want a JPEG placeholder", thumb, err)
	}
	if img, err := jpeg.Decode(&out); err != nil || img.Bounds().Dx() != 64 || img.Bounds().Dy() != 48 {
		t.Fatalf("placeholder: %v", err)
	}
	thumb, err = m.Thumbnail(context.Background(), bytes.NewReader(jpegWithScans(t, 2)), io.Discard, 256)
	if err != nil || thumb.Placeholder {
		t.Fatalf("thumbnail of two scans: %+v, %v, want it decoded", thumb, err)
	}
}
