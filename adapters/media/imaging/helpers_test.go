package imaging

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/acme/postsvc/ports/media"
)

// Secrets planted in the metadata; none may reach a cleaned file.
const (
	secretCamera  = "SECRETCAM-SN-0042"
	secretComment = "secret comment: 221B Baker Street"
	xmpNamespace  = "http://ns.adobe.com/xap/1.0/"
)

// gpsLatitude is the GPSLatitude value planted: 51/1, 31/1, 2315/100 as big-endian
// rationals, a byte string no encoder produces by chance.
var gpsLatitude = []byte{0, 0, 0, 51, 0, 0, 0, 1, 0, 0, 0, 31, 0, 0, 0, 1, 0, 0, 0x09, 0x0b, 0, 0, 0, 0x64}

// forbidden are byte strings that mark metadata.
var forbidden = []string{xmpNamespace, "http://ns.adobe.com/xap", "Photoshop 3.0", "8BIM", secretCamera, secretComment, string(gpsLatitude), "XMP DataXMP", "<x:xmpmeta"}

// pattern is an image whose corners differ, so a turned or flipped image shows.
func pattern(w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			// Never red: the red block marks the top-left corner.
			m.SetNRGBA(x, y, color.NRGBA{uint8(x * 127 / max(1, w-1)), uint8(64 + y*127/max(1, h-1)), uint8(128 + (x^y)&0x3f), 255})
		}
	}
	// A red block at the top-left corner.
	for y := range max(1, h/8) {
		for x := range max(1, w/8) {
			m.SetNRGBA(x, y, color.NRGBA{255, 0, 0, 255})
		}
	}
	return m
}

func encodePNG(t testing.TB, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(t testing.TB, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: 85}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeGIF(t testing.TB, frames ...image.Image) []byte {
	t.Helper()
	g := &gif.GIF{LoopCount: 0}
	for _, f := range frames {
		p := image.NewPaletted(f.Bounds(), palette.Plan9)
		for y := f.Bounds().Min.Y; y < f.Bounds().Max.Y; y++ {
			for x := f.Bounds().Min.X; x < f.Bounds().Max.X; x++ {
				p.Set(x, y, f.At(x, y))
			}
		}
		g.Image = append(g.Image, p)
		g.Delay = append(g.Delay, 10)
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, g); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// richTIFF is an EXIF TIFF structure in the given byte order with IFD0 holding Make (the
// camera secret), Orientation and a GPS IFD pointer, and a GPS IFD holding GPSLatitudeRef
// and GPSLatitude.
func richTIFF(order binary.ByteOrder, orientation int) []byte {
	var o binary.AppendByteOrder = binary.BigEndian
	b := []byte("MM\x00*")
	if order == binary.LittleEndian {
		o = binary.LittleEndian
		b = []byte("II*\x00")
	}
	const ifd0 = 8
	const ifd0Size = 2 + 3*12 + 4
	makeOff := ifd0 + ifd0Size
	gpsOff := makeOff + len(secretCamera) + 1
	gpsOff += gpsOff & 1
	gpsSize := 2 + 2*12 + 4
	latOff := gpsOff + gpsSize
	b = o.AppendUint32(b, ifd0)
	entry := func(b []byte, tag, typ uint16, count, value uint32, short bool) []byte {
		b = o.AppendUint16(b, tag)
		b = o.AppendUint16(b, typ)
		b = o.AppendUint32(b, count)
		if short {
			b = o.AppendUint16(b, uint16(value))
			return o.AppendUint16(b, 0)
		}
		return o.AppendUint32(b, value)
	}
	b = o.AppendUint16(b, 3)
	b = entry(b, 0x010f, 2, uint32(len(secretCamera)+1), uint32(makeOff), false)
	b = entry(b, tagOrientation, typeShort, 1, uint32(orientation), true)
	b = entry(b, 0x8825, 4, 1, uint32(gpsOff), false)
	b = o.AppendUint32(b, 0)
	b = append(append(b, secretCamera...), 0)
	for len(b) < gpsOff {
		b = append(b, 0)
	}
	b = o.AppendUint16(b, 2)
	b = append(entry(b, 0x0001, 2, 2, 0, false)[:len(b)+8], 'N', 0, 0, 0)
	b = entry(b, 0x0002, 5, 3, uint32(latOff), false)
	b = o.AppendUint32(b, 0)
	// The rationals are written big-endian whatever the order: the test looks for these
	// bytes, and a reader of this fixture never decodes them.
	return append(b, gpsLatitude...)
}

const xmpPacket = `<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="` + secretCamera + `"/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>`

// iptc is a Photoshop image resource block holding an IPTC by-line.
func iptc() []byte {
	record := append([]byte{0x1c, 0x02, 0x50, 0x00, byte(len(secretComment))}, secretComment...)
	b := []byte("Photoshop 3.0\x008BIM\x04\x04\x00\x00")
	b = binary.BigEndian.AppendUint32(b, uint32(len(record)))
	b = append(b, record...)
	if len(record)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

func jpegSegment(marker byte, payload []byte) []byte {
	return append([]byte{0xff, marker, byte((len(payload) + 2) >> 8), byte(len(payload) + 2)}, payload...)
}

// jpegWithMetadata puts EXIF (with orientation and GPS), XMP, IPTC and a comment after SOI,
// another comment before the scan and an MPF-like trailer with EXIF after EOI.
func jpegWithMetadata(src []byte, order binary.ByteOrder, orientation int) []byte {
	var b []byte
	b = append(b, src[:2]...)
	rest := src[2:]
	// Keep the encoder's JFIF APP0, if any, first.
	if rest[1] == 0xe0 {
		n := 2 + int(binary.BigEndian.Uint16(rest[2:4]))
		b = append(b, rest[:n]...)
		rest = rest[n:]
	}
	b = append(b, jpegSegment(0xe1, append([]byte(exifHeader), richTIFF(order, orientation)...))...)
	b = append(b, jpegSegment(0xe1, append([]byte(xmpNamespace+"\x00"), xmpPacket...))...)
	b = append(b, jpegSegment(0xed, iptc())...)
	b = append(b, jpegSegment(0xfe, []byte(secretComment))...)
	sos := bytes.Index(rest, []byte{0xff, 0xda})
	b = append(b, rest[:sos]...)
	b = append(b, jpegSegment(0xfe, []byte(secretComment))...)
	b = append(b, rest[sos:]...)
	// Trailing data after EOI.
	return append(b, jpegSegment(0xe1, append([]byte(exifHeader), richTIFF(order, orientation)...))...)
}

func pngChunk(kind string, data []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	b = append(append(b, kind...), data...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[4:]))
}

// pngWithMetadata puts eXIf (orientation and GPS), tEXt, zTXt, iTXt XMP, tIME and a
// private chunk after IHDR, and a tEXt before IEND.
func pngWithMetadata(src []byte, orientation int) []byte {
	const afterIHDR = 8 + 25
	var b []byte
	b = append(b, src[:afterIHDR]...)
	b = append(b, pngChunk("eXIf", richTIFF(binary.BigEndian, orientation))...)
	b = append(b, pngChunk("tEXt", []byte("Comment\x00"+secretComment))...)
	b = append(b, pngChunk("zTXt", []byte("Author\x00\x00x\x9c\x03\x00\x00\x00\x00\x01"))...)
	b = append(b, pngChunk("iTXt", []byte("XML:com.adobe.xmp\x00\x00\x00\x00\x00"+xmpPacket))...)
	b = append(b, pngChunk("tIME", []byte{0x07, 0xe8, 1, 2, 3, 4, 5})...)
	b = append(b, pngChunk("prVt", []byte(secretCamera))...)
	iend := len(src) - 12
	b = append(b, src[afterIHDR:iend]...)
	b = append(b, pngChunk("tEXt", []byte("Comment\x00"+secretComment))...)
	b = append(b, src[iend:]...)
	return append(b, "trailing "+secretComment...)
}

func gifSubBlocks(data []byte) []byte {
	var b []byte
	for len(data) > 0 {
		n := min(255, len(data))
		b = append(append(b, byte(n)), data[:n]...)
		data = data[n:]
	}
	return append(b, 0)
}

// gifWithMetadata puts a comment and an XMP application extension after the screen
// descriptor and its colour table, and a comment before the trailer.
func gifWithMetadata(src []byte) []byte {
	at := 13
	if src[10]&0x80 != 0 {
		at += 3 << (src[10]&7 + 1)
	}
	var b []byte
	b = append(b, src[:at]...)
	b = append(append(b, 0x21, 0xfe), gifSubBlocks([]byte(secretComment))...)
	b = append(append(b, 0x21, 0xff, 11), "XMP DataXMP"...)
	b = append(b, gifSubBlocks([]byte(xmpPacket))...)
	b = append(b, src[at:len(src)-1]...)
	b = append(append(b, 0x21, 0xfe), gifSubBlocks([]byte(secretComment))...)
	return append(b, 0x3b)
}

// webpWithMetadata makes the file extended (when it is simple) and adds EXIF (orientation
// and GPS) and XMP chunks after the image data, with an unknown chunk before it.
func webpWithMetadata(t testing.TB, src []byte, order binary.ByteOrder, orientation int) []byte {
	t.Helper()
	chunk := func(kind string, data []byte) []byte {
		b := binary.LittleEndian.AppendUint32([]byte(kind), uint32(len(data)))
		b = append(b, data...)
		if len(data)%2 == 1 {
			b = append(b, 0)
		}
		return b
	}
	body := src[12:]
	var vp8x, rest []byte
	if string(body[:4]) == "VP8X" {
		vp8x, rest = bytes.Clone(body[8:18]), body[18:]
	} else {
		cfg, _, err := image.DecodeConfig(bytes.NewReader(src))
		if err != nil {
			t.Fatal(err)
		}
		vp8x = make([]byte, 10)
		w, h := cfg.Width-1, cfg.Height-1
		vp8x[4], vp8x[5], vp8x[6] = byte(w), byte(w>>8), byte(w>>16)
		vp8x[7], vp8x[8], vp8x[9] = byte(h), byte(h>>8), byte(h>>16)
		rest = body
	}
	vp8x[0] |= vp8xEXIF | vp8xXMP
	var b []byte
	b = append(b, chunk("VP8X", vp8x)...)
	b = append(b, chunk("XYZW", []byte(secretComment))...)
	b = append(b, rest...)
	b = append(b, chunk("EXIF", richTIFF(order, orientation))...)
	b = append(b, chunk("XMP ", []byte(xmpPacket))...)
	out := binary.LittleEndian.AppendUint32([]byte("RIFF"), uint32(4+len(b)))
	return append(append(out, "WEBP"...), b...)
}

func cleanBytes(t testing.TB, in []byte) ([]byte, media.ImageInfo, error) {
	t.Helper()
	var out bytes.Buffer
	info, err := New(Config{TempDir: t.TempDir()}).Clean(context.Background(), bytes.NewReader(in), &out, media.CleanLimits{MaxPixels: DefaultMaxPixels})
	return out.Bytes(), info, err
}

// samePixels reports where two images differ, "" when they do not.
func samePixels(a, b image.Image) string {
	if a.Bounds() != b.Bounds() {
		return "bounds " + a.Bounds().String() + " and " + b.Bounds().String()
	}
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			r1, g1, b1, a1 := a.At(x, y).RGBA()
			r2, g2, b2, a2 := b.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 || a1 != a2 {
				return image.Pt(x, y).String()
			}
		}
	}
	return ""
}
