package imaging

import (
	"bytes"
	"compress/lzw"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"image"
	"testing"

	"github.com/acme/postsvc/ports/media"
)

// pngFromRows builds a PNG of the given header fields whose IDAT holds zlib(raw).
func pngFromRows(w, h uint32, depth, colour, interlace byte, raw []byte) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, depth, colour, 0, 0, interlace)
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	_, _ = zw.Write(raw)
	_ = zw.Close()
	out := append([]byte(pngSignature), pngChunk("IHDR", ihdr)...)
	out = append(out, pngChunk("IDAT", z.Bytes())...)
	return append(out, pngChunk("IEND", nil)...)
}

// adam7Raw is the raw (unfiltered, filter 0) data of a w×h interlaced image of bpp bytes
// per pixel, counted independently of pngPixels: pixel by pixel over the seven passes.
func adam7Raw(w, h, bpp int) []byte {
	var raw []byte
	for _, p := range [][4]int{{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}} {
		for y := p[1]; y < h; y += p[3] {
			row := []byte{}
			for x := p[0]; x < w; x += p[2] {
				row = append(row, bytes.Repeat([]byte{byte(x + y)}, bpp)...)
			}
			if len(row) > 0 {
				raw = append(append(raw, 0), row...)
			}
		}
	}
	return raw
}

// gifFrame builds a one-frame GIF of w×h with a global table of colours entries and the
// given LZW data (already coded).
func gifFrame(w, h uint16, colours int, litWidth byte, lzwData []byte) []byte {
	bits := byte(0)
	for 2<<bits < colours {
		bits++
	}
	out := append([]byte("GIF89a"), byte(w), byte(w>>8), byte(h), byte(h>>8), 0x80|bits, 0, 0)
	for i := range 2 << bits {
		out = append(out, byte(i), byte(i), byte(i))
	}
	out = append(out, 0x2c, 0, 0, 0, 0, byte(w), byte(w>>8), byte(h), byte(h>>8), 0, litWidth)
	return append(append(out, gifSubBlocks(lzwData)...), 0x3b)
}

func lzwCode(litWidth int, pix []byte) []byte {
	var b bytes.Buffer
	lw := lzw.NewWriter(&b, lzw.LSB, litWidth)
	_, _ = lw.Write(pix)
	_ = lw.Close()
	return b.Bytes()
}

// webpVP8L wraps a VP8L bitstream in a simple RIFF.
func webpVP8L(bitstream []byte) []byte {
	n := len(bitstream)
	out := binary.LittleEndian.AppendUint32([]byte("RIFF"), uint32(4+8+n+n&1)) //nolint:gosec // small
	out = binary.LittleEndian.AppendUint32(append(out, "WEBPVP8L"...), uint32(n))
	out = append(out, bitstream...)
	if n&1 == 1 {
		out = append(out, 0)
	}
	return out
}

// vp8lOneColour is a valid 64×64 VP8L bitstream: five one-symbol prefix codes.
var vp8lOneColour = append(binary.LittleEndian.AppendUint32([]byte{0x2f}, 63|63<<14), 0x88, 0x88, 0x08)

// TestCleanRefusesPixelDataThatDoesNotDecode: an upload whose headers are right but whose
// pixel data does not decode is refused, as the standard decoders refuse it, instead of being
// stored to fail every thumbnail request (outside probe: four such files were stored with
// 201 and their thumbnails answered 500). Each case is checked against the decoders
// themselves, so Clean refuses exactly what they cannot decode.
func TestCleanRefusesPixelDataThatDoesNotDecode(t *testing.T) {
	rgba := func(w, h int) []byte { // non-interlaced RGBA rows, filter 0
		var raw []byte
		for range h {
			raw = append(append(raw, 0), bytes.Repeat([]byte{7}, 4*w)...)
		}
		return raw
	}
	good := rgba(16, 16)
	badFilter := bytes.Clone(good)
	badFilter[65*3] = 9 // the fourth row's filter byte
	ihdr := append(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 16), 16), 8, 6, 0, 0, 0)
	notZlib := append([]byte(pngSignature), pngChunk("IHDR", ihdr)...)
	notZlib = append(append(notZlib, pngChunk("IDAT", bytes.Repeat([]byte{0x5a}, 300))...), pngChunk("IEND", nil)...)
	truncated := pngFromRows(16, 16, 8, 6, 0, good)
	idat := bytes.Index(truncated, []byte("IDAT"))
	idatLen := int(binary.BigEndian.Uint32(truncated[idat-4:]))
	truncated = append(append(bytes.Clone(truncated[:idat-4]), pngChunk("IDAT", truncated[idat+4:idat+4+idatLen/2])...), pngChunk("IEND", nil)...)

	pix := make([]byte, 32*32)
	outside := bytes.Repeat([]byte{3}, 32*32) // colour 3 of a 2-colour table

	for _, c := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"png", pngFromRows(16, 16, 8, 6, 0, good), true},
		{"png interlaced", pngFromRows(13, 11, 8, 6, 1, adam7Raw(13, 11, 4)), true},
		{"png interlaced 1-pixel", pngFromRows(1, 1, 8, 2, 1, adam7Raw(1, 1, 3)), true},
		{"png 1-bit grey", pngFromRows(9, 3, 1, 0, 0, []byte{0, 0xff, 0x80, 0, 0, 0, 0, 0x55, 0}), true},
		{"png IDAT not zlib", notZlib, false},
		{"png zlib stream cut short", truncated, false},
		{"png a row missing", pngFromRows(16, 16, 8, 6, 0, good[:len(good)-65]), false},
		{"png a row too many", pngFromRows(16, 16, 8, 6, 0, append(bytes.Clone(good), good[:65]...)), false},
		{"png filter 9", pngFromRows(16, 16, 8, 6, 0, badFilter), false},
		{"png interlaced without its last pass", pngFromRows(13, 11, 8, 6, 1, adam7Raw(13, 11, 4)[:len(adam7Raw(13, 11, 4))-5*(1+13*4)]), false},
		{"gif", gifFrame(32, 32, 256, 8, lzwCode(8, pix)), true},
		{"gif random data", gifFrame(32, 32, 256, 8, bytes.Repeat([]byte{0xa7, 0x13, 0xff}, 200)), false},
		{"gif too few pixels", gifFrame(32, 32, 256, 8, lzwCode(8, pix[:1000])), false},
		{"gif a pixel outside the table", gifFrame(32, 32, 2, 2, lzwCode(2, outside)), false},
		{"gif code size 12", gifFrame(32, 32, 256, 12, lzwCode(8, pix)), false},
		{"webp", webpVP8L(vp8lOneColour), true},
		{"webp VP8L garbage after the header", webpVP8L(append(bytes.Clone(vp8lOneColour[:5]), bytes.Repeat([]byte{0x5a}, 40)...)), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, decodeErr := image.Decode(bytes.NewReader(c.in))
			if (decodeErr == nil) != c.ok {
				t.Fatalf("the test's own file: image.Decode error %v, want decodable %v", decodeErr, c.ok)
			}
			out, _, err := cleanBytes(t, c.in)
			switch {
			case c.ok && err != nil:
				t.Fatalf("Clean refused a file that decodes: %v", err)
			case c.ok:
				if _, _, err := image.Decode(bytes.NewReader(out)); err != nil {
					t.Fatalf("the cleaned file does not decode: %v", err)
				}
			case err == nil:
				t.Fatalf("Clean accepted a file that does not decode (%v)", decodeErr)
			case !errors.Is(err, media.ErrUnsupportedFormat):
				t.Fatalf("Clean: %v, want ErrUnsupportedFormat", err)
			}
		})
	}
}
