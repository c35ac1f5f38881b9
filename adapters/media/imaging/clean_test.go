package imaging

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color/palette"
	"image/draw"
	"strings"
	"testing"

	"github.com/acme/postsvc/ports/media"
)

type cleanCase struct {
	name   string
	in     []byte
	format string
	// orientation the cleaned file keeps.
	orientation int
	// same: the input holds nothing to drop, so the output is the input.
	same bool
}

func cleanCases(t testing.TB) []cleanCase {
	t.Helper()
	m := pattern(120, 80)
	pngPlain := encodePNG(t, m)
	pal := image.NewPaletted(m.Bounds(), palette.WebSafe)
	draw.Draw(pal, pal.Bounds(), m, image.Point{}, draw.Src)
	pngPal := encodePNG(t, pal)
	jpegPlain := encodeJPEG(t, m)
	gifPlain := encodeGIF(t, m, pattern(60, 40))
	lossy := readFixture(t, "blue-purple-pink.lossy.webp")
	lossless := readFixture(t, "gopher-doc.8bpp.lossless.webp")
	alpha := readFixture(t, "yellow_rose.lossy-with-alpha.webp")
	progressive := readFixture(t, "video-001.q50.420.progressive.jpeg")
	restart := readFixture(t, "video-001.restart2.jpeg")
	cmyk := readFixture(t, "video-001.cmyk.jpeg")
	be, le := binary.BigEndian, binary.LittleEndian
	return []cleanCase{
		{"png", pngPlain, media.FormatPNG, 1, true},
		{"png metadata", pngWithMetadata(pngPlain, 6), media.FormatPNG, 6, false},
		{"png palette metadata", pngWithMetadata(pngPal, 6), media.FormatPNG, 6, false},
		{"png orientation 1", pngWithMetadata(pngPlain, 1), media.FormatPNG, 1, false},
		{"jpeg", jpegPlain, media.FormatJPEG, 1, true},
		{"jpeg metadata big-endian", jpegWithMetadata(jpegPlain, be, 6), media.FormatJPEG, 6, false},
		{"jpeg metadata little-endian", jpegWithMetadata(jpegPlain, le, 8), media.FormatJPEG, 8, false},
		{"jpeg orientation 1", jpegWithMetadata(jpegPlain, le, 1), media.FormatJPEG, 1, false},
		{"jpeg progressive", progressive, media.FormatJPEG, 1, true},
		{"jpeg progressive metadata", jpegWithMetadata(progressive, be, 6), media.FormatJPEG, 6, false},
		{"jpeg restart markers metadata", jpegWithMetadata(restart, le, 3), media.FormatJPEG, 3, false},
		{"jpeg adobe cmyk", cmyk, media.FormatJPEG, 1, true},
		{"jpeg adobe cmyk metadata", jpegWithMetadata(cmyk, be, 6), media.FormatJPEG, 6, false},
		{"gif", gifPlain, media.FormatGIF, 1, true},
		{"gif metadata", gifWithMetadata(gifPlain), media.FormatGIF, 1, false},
		{"webp lossy", lossy, media.FormatWebP, 1, true},
		{"webp lossless", lossless, media.FormatWebP, 1, true},
		{"webp alpha", alpha, media.FormatWebP, 1, true},
		{"webp lossy metadata", webpWithMetadata(t, lossy, le, 6), media.FormatWebP, 6, false},
		{"webp lossless metadata", webpWithMetadata(t, lossless, be, 5), media.FormatWebP, 5, false},
		{"webp alpha metadata", webpWithMetadata(t, alpha, le, 6), media.FormatWebP, 6, false},
		{"webp orientation 1", webpWithMetadata(t, lossy, le, 1), media.FormatWebP, 1, false},
	}
}

func TestCleanDropsMetadataAndKeepsPixels(t *testing.T) {
	for _, tc := range cleanCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			out, info, err := cleanBytes(t, tc.in)
			if err != nil {
				t.Fatalf("Clean: %v", err)
			}
			cfgIn, formatIn, err := image.DecodeConfig(bytes.NewReader(tc.in))
			if err != nil {
				t.Fatalf("the input does not decode: %v", err)
			}
			want := media.ImageInfo{Format: tc.format, ContentType: "image/" + tc.format, Width: cfgIn.Width, Height: cfgIn.Height, Orientation: tc.orientation}
			if info != want || formatIn != tc.format {
				t.Fatalf("info %+v, want %+v", info, want)
			}
			if tc.same && !bytes.Equal(out, tc.in) {
				t.Fatalf("a file with nothing to drop changed: %d bytes in, %d out", len(tc.in), len(out))
			}
			if !tc.same && len(out) >= len(tc.in) {
				t.Fatalf("%d bytes in, %d out: nothing dropped", len(tc.in), len(out))
			}
			for _, s := range forbidden {
				if bytes.Contains(out, []byte(s)) {
					t.Errorf("the output holds %q", s)
				}
			}
			if n := bytes.Count(out, []byte(exifHeader)); tc.format == media.FormatJPEG && n != min(1, tc.orientation-1) {
				t.Errorf("%d EXIF headers in the output", n)
			}
			orientation, err := checkStructure(tc.format, out)
			if err != nil {
				t.Fatalf("structure: %v", err)
			}
			if orientation != tc.orientation {
				t.Fatalf("the output carries orientation %d, want %d", orientation, tc.orientation)
			}
			cfgOut, formatOut, err := image.DecodeConfig(bytes.NewReader(out))
			if err != nil || formatOut != tc.format || cfgOut.Width != cfgIn.Width || cfgOut.Height != cfgIn.Height {
				t.Fatalf("output DecodeConfig %v %s %dx%d, want %s %dx%d", err, formatOut, cfgOut.Width, cfgOut.Height, tc.format, cfgIn.Width, cfgIn.Height)
			}
			mIn, _, err := image.Decode(bytes.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			mOut, _, err := image.Decode(bytes.NewReader(out))
			if err != nil {
				t.Fatalf("the output does not decode: %v", err)
			}
			if where := samePixels(mIn, mOut); where != "" {
				t.Fatalf("pixels differ at %s", where)
			}
			again, info2, err := cleanBytes(t, out)
			if err != nil || !bytes.Equal(again, out) || info2 != info {
				t.Fatalf("cleaning twice: %v, same bytes %v, info %+v", err, bytes.Equal(again, out), info2)
			}
		})
	}
}

// The minimal EXIF block written back is exactly the expected bytes, in the source's byte
// order.
func TestMinimalEXIFBytes(t *testing.T) {
	le := minimalTIFF(binary.LittleEndian, 6)
	be := minimalTIFF(binary.BigEndian, 6)
	if want := "II*\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x01\x00\x00\x00\x06\x00\x00\x00\x00\x00\x00\x00"; string(le) != want {
		t.Errorf("little-endian %q, want %q", le, want)
	}
	if want := "MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00\x00\x00\x00\x00"; string(be) != want {
		t.Errorf("big-endian %q, want %q", be, want)
	}
	for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		for o := 1; o <= 8; o++ {
			if got, _ := exifOrientation(richTIFF(order, o)); got != o {
				t.Errorf("%v orientation %d read as %d", order, o, got)
			}
		}
	}
	if got, _ := exifOrientation(richTIFF(binary.BigEndian, 9)); got != 1 {
		t.Errorf("orientation 9 read as %d, want 1", got)
	}
	if !strings.Contains(string(richTIFF(binary.BigEndian, 6)), secretCamera) {
		t.Fatal("the fixture lost its secret")
	}
}
