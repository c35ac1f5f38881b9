package imaging

import (
	"bytes"
	"context"
	"encoding/binary"
	"image"
	"image/gif"
	"slices"
	"testing"

	"github.com/acme/postsvc/ports/media"
)

// FuzzCleanImageData complements FuzzClean, whose pixel comparison sees what image.Decode
// sees: the first frame of a GIF, the default image of an APNG, and not the colour profile or
// transform. Whenever Clean accepts a file, for each format:
//
//   - PNG: every chunk that makes the image (IHDR, PLTE, IDAT, transparency, colour, APNG's
//     acTL, fcTL and fdAT, ...) is in the output, byte for byte and in order, up to IEND;
//   - JPEG: the frame header, tables, restart interval, every scan with its entropy-coded
//     data, and the JFIF, ICC profile and Adobe transform segments, byte for byte and in order;
//   - GIF: every frame decodes (image/gif's DecodeAll) to the same pixels, with the same
//     delay, disposal, loop count, background and screen;
//   - WebP: the VP8, VP8L, ALPH and ICCP chunks, byte for byte and in order, and the canvas
//     and alpha and ICC flags of VP8X;
//   - and no marker of metadata planted by the seeds (XMP namespace, Photoshop/IPTC, the
//     planted camera serial, comment and GPS latitude) is in the output unless the input's
//     image data itself holds it.
func FuzzCleanImageData(f *testing.F) {
	for _, b := range smallSeeds(f) {
		f.Add(b)
	}
	for _, tc := range cleanCases(f) {
		if len(tc.in) < 8<<10 {
			f.Add(tc.in)
		}
	}
	for _, b := range frameSeeds(f) {
		f.Add(b)
	}
	m := New(Config{TempDir: f.TempDir()})
	limits := media.CleanLimits{MaxPixels: fuzzMaxPixels}
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		info, err := m.Clean(context.Background(), bytes.NewReader(in), &out, limits)
		if err != nil {
			return
		}
		got := out.Bytes()
		var kept [][]byte // the input's image data, for the metadata markers
		switch info.Format {
		case media.FormatPNG:
			kept = checkSameParts(t, "PNG chunks", pngImageChunks, in, got)
		case media.FormatJPEG:
			kept = checkSameParts(t, "JPEG segments", jpegImageSegments, in, got)
		case media.FormatWebP:
			kept = checkSameParts(t, "WebP chunks", webpImageChunks, in, got)
		case media.FormatGIF:
			checkSameFrames(t, in, got)
			kept = [][]byte{in} // frames are checked decoded; any byte may be pixel data
		default:
			t.Fatalf("format %q", info.Format)
		}
		all := bytes.Join(kept, nil)
		for _, marker := range forbidden {
			if bytes.Contains(got, []byte(marker)) && !bytes.Contains(all, []byte(marker)) {
				t.Fatalf("%s output holds %q outside the input's image data", info.Format, marker)
			}
		}
	})
}

// checkSameParts checks that parts lists the same image data in the input and the output,
// and returns the input's.
func checkSameParts(t *testing.T, what string, parts func([]byte) ([][]byte, bool), in, out []byte) [][]byte {
	t.Helper()
	want, ok := parts(in)
	if !ok {
		// The test's parser is stricter than the cleaner here; nothing to compare with.
		return [][]byte{in}
	}
	got, ok := parts(out)
	if !ok {
		t.Fatalf("%s: the output does not parse", what)
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d in the output, %d in the input", what, len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("%s: part %d differs: %q, want %q", what, i, clip(got[i]), clip(want[i]))
		}
	}
	return want
}

func clip(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// pngImageChunks lists a PNG's image chunks (type and data) up to IEND.
func pngImageChunks(b []byte) ([][]byte, bool) {
	image := map[string]bool{
		"IHDR": true, "PLTE": true, "IDAT": true, "IEND": true, "tRNS": true, "gAMA": true, "cHRM": true,
		"sRGB": true, "iCCP": true, "sBIT": true, "cICP": true, "mDCv": true, "cLLI": true, "bKGD": true,
		"hIST": true, "sPLT": true, "pHYs": true, "acTL": true, "fcTL": true, "fdAT": true,
	}
	if !bytes.HasPrefix(b, []byte(pngSignature)) {
		return nil, false
	}
	var out [][]byte
	for i := 8; i+12 <= len(b); {
		n := int(binary.BigEndian.Uint32(b[i:]))
		if n > len(b)-i-12 {
			return nil, false
		}
		kind := string(b[i+4 : i+8])
		if image[kind] {
			out = append(out, b[i+4:i+8+n])
		}
		if kind == "IEND" {
			return out, true
		}
		i += 12 + n
	}
	return nil, false
}

// jpegImageSegments lists a JPEG's image segments (marker and payload; a scan with its
// entropy-coded data) up to EOI.
func jpegImageSegments(b []byte) ([][]byte, bool) {
	if !bytes.HasPrefix(b, []byte{0xff, 0xd8}) {
		return nil, false
	}
	var out [][]byte
	for i := 2; ; {
		if i >= len(b) || b[i] != 0xff {
			return nil, false
		}
		for i < len(b) && b[i] == 0xff { // fill bytes
			i++
		}
		if i >= len(b) {
			return nil, false
		}
		m := b[i]
		i++
		switch {
		case m == 0xd9:
			return out, true
		case m >= 0xd0 && m <= 0xd7: // a stray restart marker
			continue
		}
		if i+2 > len(b) {
			return nil, false
		}
		n := int(binary.BigEndian.Uint16(b[i:]))
		if n < 2 || i+n > len(b) {
			return nil, false
		}
		start := i - 1 // the marker, then the length and the payload
		p := b[i+2 : i+n]
		i += n
		if m == 0xda {
			// The entropy-coded data runs to the first 0xff that is neither stuffed nor a
			// restart marker.
			for {
				j := bytes.IndexByte(b[i:], 0xff)
				if j < 0 || i+j+1 >= len(b) {
					return nil, false
				}
				if c := b[i+j+1]; c == 0 || c >= 0xd0 && c <= 0xd7 {
					i += j + 2
					continue
				}
				i += j
				break
			}
		}
		seg := b[start:i]
		switch {
		case m == 0xc0, m == 0xc1, m == 0xc2, m == 0xc4, m == 0xdb, m == 0xdd, m == 0xda,
			m == 0xe0 && bytes.HasPrefix(p, []byte("JFIF\x00")),
			m == 0xe2 && bytes.HasPrefix(p, []byte("ICC_PROFILE\x00")),
			m == 0xee && bytes.HasPrefix(p, []byte("Adobe")):
			out = append(out, seg)
		}
	}
}

// webpImageChunks lists a WebP's image chunks (type and data) within its RIFF size: the one
// chunk of a simple file; VP8X's canvas and flags (alpha, ICC) and the VP8, VP8L, ALPH and
// ICCP chunks of an extended one.
func webpImageChunks(b []byte) ([][]byte, bool) {
	if len(b) < 20 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WEBP" {
		return nil, false
	}
	end := 8 + int(binary.LittleEndian.Uint32(b[4:]))
	if end > len(b) {
		return nil, false
	}
	var out [][]byte
	for i := 12; i+8 <= end; {
		kind := string(b[i : i+4])
		n := int(binary.LittleEndian.Uint32(b[i+4:]))
		if n > end-i-8 {
			return nil, false
		}
		data := b[i+8 : i+8+n]
		switch {
		case i == 12 && (kind == "VP8 " || kind == "VP8L"):
			return [][]byte{b[i : i+8+n]}, true
		case i == 12 && kind == "VP8X" && n >= 10:
			out = append(out, []byte{'X', data[0] & 0x30}, data[4:10])
		case i == 12:
			return nil, false
		case kind == "VP8 ", kind == "VP8L", kind == "ALPH", kind == "ICCP":
			out = append(out, b[i:i+8+n])
		}
		i += 8 + n + n&1
	}
	return out, len(out) > 0
}

// checkSameFrames compares the GIFs frame by frame, when the input decodes.
func checkSameFrames(t *testing.T, in, out []byte) {
	t.Helper()
	a, err := gif.DecodeAll(bytes.NewReader(in))
	if err != nil {
		return
	}
	b, err := gif.DecodeAll(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("the input decodes, the output does not: %v", err)
	}
	if len(a.Image) != len(b.Image) || !slices.Equal(a.Delay, b.Delay) || !slices.Equal(a.Disposal, b.Disposal) ||
		a.LoopCount != b.LoopCount || a.BackgroundIndex != b.BackgroundIndex ||
		a.Config.Width != b.Config.Width || a.Config.Height != b.Config.Height {
		t.Fatalf("%d frames (delays %v, disposal %v, loop %d, background %d, %dx%d), want %d (%v, %v, %d, %d, %dx%d)",
			len(b.Image), b.Delay, b.Disposal, b.LoopCount, b.BackgroundIndex, b.Config.Width, b.Config.Height,
			len(a.Image), a.Delay, a.Disposal, a.LoopCount, a.BackgroundIndex, a.Config.Width, a.Config.Height)
	}
	for i := range a.Image {
		if where := samePixels(a.Image[i], b.Image[i]); where != "" {
			t.Fatalf("frame %d: pixels differ at %s", i, where)
		}
	}
}

// frameSeeds are files of several frames, with metadata between them: an animated GIF, and an
// APNG whose second frame differs from its default image.
func frameSeeds(t testing.TB) [][]byte {
	t.Helper()
	g := encodeGIF(t, pattern(8, 6), flipped(pattern(8, 6)), pattern(4, 4))
	// A comment and an XMP application extension before the second frame's graphic control.
	controls := 0
	second := -1
	for _, at := range gifBlockStarts(g) {
		if g[at] == 0x21 && g[at+1] == 0xf9 {
			if controls++; controls == 2 {
				second = at
			}
		}
	}
	if second < 0 {
		t.Fatal("seed GIF without a second frame")
	}
	var meta []byte
	meta = append(append(meta, 0x21, 0xfe), gifSubBlocks([]byte(secretComment))...)
	meta = append(append(meta, 0x21, 0xff, 11), "XMP DataXMP"...)
	meta = append(meta, gifSubBlocks([]byte(xmpPacket))...)
	animated := slices.Concat(g[:second], meta, g[second:])

	frame1, frame2 := encodePNG(t, pattern(8, 6)), encodePNG(t, flipped(pattern(8, 6)))
	idat := func(png []byte) []byte {
		chunks, ok := pngImageChunks(png)
		if !ok {
			t.Fatal("seed PNG")
		}
		for _, c := range chunks {
			if string(c[:4]) == "IDAT" {
				return c[4:]
			}
		}
		t.Fatal("seed PNG without IDAT")
		return nil
	}
	fctl := func(seq uint32) []byte {
		b := binary.BigEndian.AppendUint32(nil, seq)
		b = binary.BigEndian.AppendUint32(b, 8)
		b = binary.BigEndian.AppendUint32(b, 6)
		b = binary.BigEndian.AppendUint32(b, 0)
		b = binary.BigEndian.AppendUint32(b, 0)
		return append(b, 0, 10, 0, 100, 0, 0) // delay 10/100 s, dispose none, blend source
	}
	apng := slices.Concat(
		frame1[:8+25], // signature and IHDR
		pngChunk("acTL", []byte{0, 0, 0, 2, 0, 0, 0, 0}),
		pngChunk("tEXt", []byte("Comment\x00"+secretComment)),
		pngChunk("fcTL", fctl(0)),
		pngChunk("IDAT", idat(frame1)),
		pngChunk("eXIf", richTIFF(binary.BigEndian, 6)),
		pngChunk("fcTL", fctl(1)),
		pngChunk("fdAT", append(binary.BigEndian.AppendUint32(nil, 2), idat(frame2)...)),
		pngChunk("iTXt", []byte("XML:com.adobe.xmp\x00\x00\x00\x00\x00"+xmpPacket)),
		pngChunk("IEND", nil),
	)
	return [][]byte{animated, apng}
}

// flipped is m upside down.
func flipped(m *image.NRGBA) *image.NRGBA {
	out := image.NewNRGBA(m.Bounds())
	h := m.Bounds().Dy()
	for y := range h {
		copy(out.Pix[y*out.Stride:(y+1)*out.Stride], m.Pix[(h-1-y)*m.Stride:(h-y)*m.Stride])
	}
	return out
}

// gifBlockStarts returns the offsets of a GIF's blocks (extensions and images) after the
// screen descriptor and its colour table, up to the trailer.
func gifBlockStarts(b []byte) []int {
	var starts []int
	i := 13
	if b[10]&0x80 != 0 {
		i += 3 << (b[10]&7 + 1)
	}
	subBlocks := func() {
		for i < len(b) && b[i] != 0 {
			i += 1 + int(b[i])
		}
		i++
	}
	for i < len(b) && b[i] != 0x3b {
		starts = append(starts, i)
		switch b[i] {
		case 0x21:
			i += 2
		case 0x2c:
			packed := b[i+9]
			i += 10
			if packed&0x80 != 0 {
				i += 3 << (packed&7 + 1)
			}
			i++ // LZW minimum code size
		default:
			return starts
		}
		subBlocks()
	}
	return starts
}
