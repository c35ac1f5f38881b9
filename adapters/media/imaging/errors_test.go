package imaging

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/acme/postsvc/ports/media"
)

func cleanErr(t *testing.T, in []byte) error {
	t.Helper()
	out, _, err := cleanBytes(t, in)
	if err == nil {
		t.Fatalf("Clean accepted it (%d bytes out)", len(out))
	}
	return err
}

func TestCleanRefusesWhatIsNotAnImage(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	cases := map[string][]byte{
		"empty":        nil,
		"text":         []byte("hello, this is a text file named photo.jpg\n"),
		"html":         []byte("<!DOCTYPE html><html><body><img src=x></body></html>"),
		"random":       random,
		"riff wave":    []byte("RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00"),
		"png sig only": []byte(pngSignature),
		"jpeg soi":     {0xff, 0xd8},
		"gif header":   []byte("GIF89a"),
		"svg":          []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if err := cleanErr(t, in); !errors.Is(err, media.ErrUnsupportedFormat) {
				t.Fatalf("%v, want ErrUnsupportedFormat", err)
			}
		})
	}
}

// Every prefix of a valid file is refused as unsupported (a truncated upload), never
// accepted and never a panic.
func TestCleanRefusesTruncatedFiles(t *testing.T) {
	for _, tc := range cleanCases(t) {
		if !tc.same {
			continue // files with trailers stay valid when only the trailer is cut
		}
		t.Run(tc.name, func(t *testing.T) {
			step := max(1, len(tc.in)/150)
			for n := 0; n < len(tc.in); n += step {
				err := cleanErr(t, tc.in[:n])
				if !errors.Is(err, media.ErrUnsupportedFormat) {
					t.Fatalf("cut at %d: %v, want ErrUnsupportedFormat", n, err)
				}
			}
		})
	}
}

// strictReader serves data and then endless zeros, and fails the test if more than limit
// bytes are read: the bomb must be refused from its header alone.
type strictReader struct {
	t     *testing.T
	data  []byte
	limit int
	off   int
}

func (r *strictReader) Read(p []byte) (int, error) {
	if r.off+len(p) > r.limit {
		r.t.Errorf("read of %d bytes at offset %d, past the %d-byte header", len(p), r.off, r.limit)
		p = p[:max(0, r.limit-r.off)]
	}
	for i := range p {
		p[i] = 0
		if r.off+i < len(r.data) {
			p[i] = r.data[r.off+i]
		}
	}
	r.off += len(p)
	return len(p), nil
}

func pngHeader(w, h uint32, colorType byte) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, colorType, 0, 0, 0)
	return append([]byte(pngSignature), pngChunk("IHDR", ihdr)...)
}

func TestCleanRefusesBombsFromTheHeader(t *testing.T) {
	vp8x := func(w, h int) []byte {
		b := []byte("RIFF\xff\xff\xff\x0fWEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00")
		w, h = w-1, h-1
		return append(b, byte(w), byte(w>>8), byte(w>>16), byte(h), byte(h>>8), byte(h>>16))
	}
	vp8l := binary.LittleEndian.AppendUint32([]byte("RIFF\xff\xff\xff\x0fWEBPVP8L\x00\x00\x00\x0f\x2f"), 16383|16383<<14)
	vp8 := []byte("RIFF\xff\xff\xff\x0fWEBPVP8 \x00\x00\x00\x0f\x00\x00\x00\x9d\x01\x2a\xff\x3f\xff\x3f")
	jpegSOF := []byte{0xff, 0xd8, 0xff, 0xc0, 0, 17, 8, 0xff, 0xff, 0xff, 0xff, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1}
	// A comment before the frame header is read (and dropped) before the check.
	jpegCOM := append(append([]byte{0xff, 0xd8}, jpegSegment(0xfe, []byte("hello"))...), jpegSOF[2:]...)
	cases := []struct {
		name   string
		header []byte
		// limit: how many bytes Clean may read, the whole header with its checksum.
		limit int
	}{
		{"png 100000x100000", pngHeader(100000, 100000, 6), 33},
		{"png palette 100000x100000", pngHeader(100000, 100000, 3), 33},
		{"png 2^31-1 x 2^31-1", pngHeader(1<<31-1, 1<<31-1, 2), 33},
		{"jpeg 65535x65535", jpegSOF, len(jpegSOF)},
		{"jpeg after a comment", jpegCOM, len(jpegCOM)},
		{"gif 65535x65535", []byte("GIF89a\xff\xff\xff\xff\x00\x00\x00"), 13},
		{"webp vp8x 100000x100000", vp8x(100000, 100000), 30},
		{"webp vp8x 16777216x16777216", vp8x(1<<24, 1<<24), 30},
		{"webp vp8l 16384x16384", vp8l, 25},
		{"webp vp8 16383x16383", vp8, 30},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &strictReader{t: t, data: tc.header, limit: tc.limit}
			_, err := New(Config{}).Clean(context.Background(), r, io.Discard, media.CleanLimits{MaxPixels: 50_000_000})
			if !errors.Is(err, media.ErrTooManyPixels) || errors.Is(err, media.ErrUnsupportedFormat) {
				t.Fatalf("%v, want ErrTooManyPixels", err)
			}
			if !strings.Contains(err.Error(), "over 50000000 pixels") {
				t.Fatalf("%q does not say what is wrong", err)
			}
		})
	}
}

func TestCleanPixelLimitIsInclusive(t *testing.T) {
	for _, tc := range cleanCases(t) {
		if !tc.same {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			_, info, err := cleanBytes(t, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			pixels := int64(info.Width * info.Height)
			m := New(Config{})
			if _, err := m.Clean(context.Background(), bytes.NewReader(tc.in), io.Discard, media.CleanLimits{MaxPixels: pixels}); err != nil {
				t.Fatalf("at the limit: %v", err)
			}
			if _, err := m.Clean(context.Background(), bytes.NewReader(tc.in), io.Discard, media.CleanLimits{MaxPixels: pixels - 1}); !errors.Is(err, media.ErrTooManyPixels) {
				t.Fatalf("one pixel over: %v", err)
			}
		})
	}
}

func TestCleanRefusesMalformedStructures(t *testing.T) {
	m := pattern(40, 30)
	pngPlain := encodePNG(t, m)
	jpegPlain := encodeJPEG(t, m)
	gifPlain := encodeGIF(t, m)
	lossy := readFixture(t, "blue-purple-pink.lossy.webp")
	alpha := readFixture(t, "yellow_rose.lossy-with-alpha.webp")

	badCRC := bytes.Clone(pngPlain)
	badCRC[len(badCRC)-20]++ // in the IDAT data
	pngNoIDAT := append(bytes.Clone(pngPlain[:33]), pngChunk("IEND", nil)...)
	pngCritical := append(bytes.Clone(pngPlain[:33]), append(pngChunk("ABCD", []byte("x")), pngPlain[33:]...)...)
	pngBadDepth := append(pngHeader(10, 10, 2)[:8+8+8], 7, 2, 0, 0, 0)
	pngBadDepth = append(pngBadDepth[:8], pngChunk("IHDR", pngBadDepth[16:])...)
	pngBadDepth = append(pngBadDepth, pngPlain[33:]...)

	shortSegment := append([]byte{0xff, 0xd8, 0xff, 0xe1, 0x00, 0x01}, jpegPlain[2:]...)
	lossless := bytes.Replace(jpegPlain, []byte{0xff, 0xc0}, []byte{0xff, 0xc3}, 1)
	arithmetic := bytes.Replace(jpegPlain, []byte{0xff, 0xc0}, []byte{0xff, 0xc9}, 1)
	longSegment := append([]byte{0xff, 0xd8, 0xff, 0xfe, 0xff, 0xff}, "short"...)
	garbage := append([]byte{0xff, 0xd8, 0x00, 0x00}, jpegPlain[2:]...)
	noSOF := append([]byte{0xff, 0xd8}, jpegPlain[bytes.Index(jpegPlain, []byte{0xff, 0xda}):]...)
	badSOF := bytes.Clone(jpegPlain)
	sof := bytes.Index(badSOF, []byte{0xff, 0xc0})
	badSOF[sof+9] = 2 // two components in a frame header sized for three

	gifOutside := bytes.Clone(gifPlain)
	desc := gifFirstDescriptor(t, gifPlain)
	gifOutside[desc+5] = 41 // frame 41 wide on a 40-wide screen
	gifUnknownExt := append(append(bytes.Clone(gifPlain[:desc]), 0x21, 0x42, 0), gifPlain[desc:]...)

	webpPastRIFF := bytes.Clone(lossy)
	binary.LittleEndian.PutUint32(webpPastRIFF[16:], uint32(len(lossy)))
	webpAnimated := bytes.Clone(alpha)
	webpAnimated[20] |= vp8xAnimation
	webpCanvas := bytes.Clone(alpha)
	webpCanvas[24]++ // canvas one pixel wider than the frame
	webpWAVE := append([]byte("RIFF\x04\x00\x00\x00WEBPXXXX"), lossy[12:]...)

	cases := map[string][]byte{
		"png bad crc":               badCRC,
		"png no idat":               pngNoIDAT,
		"png unknown critical":      pngCritical,
		"png bit depth 7":           pngBadDepth,
		"jpeg segment too short":    shortSegment,
		"jpeg lossless":             lossless,
		"jpeg arithmetic":           arithmetic,
		"jpeg segment past the end": longSegment,
		"jpeg garbage after soi":    garbage,
		"jpeg scan before frame":    noSOF,
		"jpeg frame header size":    badSOF,
		"gif frame outside screen":  gifOutside,
		"gif unknown extension":     gifUnknownExt,
		"webp chunk past riff":      webpPastRIFF,
		"webp animated":             webpAnimated,
		"webp canvas not frame":     webpCanvas,
		"webp riff too small":       webpWAVE,
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			err := cleanErr(t, in)
			if !errors.Is(err, media.ErrUnsupportedFormat) {
				t.Fatalf("%v, want ErrUnsupportedFormat", err)
			}
			t.Log(err)
		})
	}
}

type failWriter struct{ after int }

var errWrite = errors.New("disk full")

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.after {
		n := w.after
		w.after = 0
		return n, errWrite
	}
	w.after -= len(p)
	return len(p), nil
}

// The reader's and the writer's errors come back as they are, not as a format error; a
// cancelled context stops the copy.
func TestCleanReturnsIOErrors(t *testing.T) {
	errRead := errors.New("connection reset")
	for _, tc := range cleanCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			m := New(Config{TempDir: t.TempDir()})
			ctx := context.Background()
			cuts := []int{0, 5, len(tc.in) / 2}
			if tc.same {
				// Files with metadata have a trailer, which is not read.
				cuts = append(cuts, len(tc.in)-1)
			}
			for _, cut := range cuts {
				r := io.MultiReader(bytes.NewReader(tc.in[:cut]), iotest.ErrReader(errRead))
				if _, err := m.Clean(ctx, r, io.Discard, media.CleanLimits{}); !errors.Is(err, errRead) || errors.Is(err, media.ErrUnsupportedFormat) {
					t.Fatalf("read error at %d: %v", cut, err)
				}
			}
			if _, err := m.Clean(ctx, bytes.NewReader(tc.in), &failWriter{after: len(tc.in) / 3}, media.CleanLimits{}); !errors.Is(err, errWrite) {
				t.Fatalf("write error: %v", err)
			}
			cancelled, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := m.Clean(cancelled, bytes.NewReader(tc.in), io.Discard, media.CleanLimits{}); !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled: %v", err)
			}
			// Cancelled after the header: the rest is not copied.
			ctx2, cancel2 := context.WithCancel(ctx)
			defer cancel2()
			r := &cancelAfter{r: iotest.OneByteReader(bytes.NewReader(tc.in)), n: 64, cancel: cancel2}
			if _, err := m.Clean(ctx2, r, io.Discard, media.CleanLimits{}); !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled while copying: %v", err)
			}
		})
	}
}

type cancelAfter struct {
	r      io.Reader
	n      int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= n; c.n <= 0 {
		c.cancel()
	}
	return n, err
}

// One byte at a time or all at once, the output is the same.
func TestCleanOneByteReads(t *testing.T) {
	for _, tc := range cleanCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			want, _, err := cleanBytes(t, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if _, err := New(Config{TempDir: t.TempDir()}).Clean(context.Background(), iotest.OneByteReader(bytes.NewReader(tc.in)), &out, media.CleanLimits{}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Fatal("a byte at a time gives other bytes")
			}
		})
	}
}

func TestDetect(t *testing.T) {
	for _, tc := range []struct{ head, want string }{
		{pngSignature, media.FormatPNG},
		{"\xff\xd8\xff\xe0", media.FormatJPEG},
		{"GIF87a", media.FormatGIF},
		{"GIF89a", media.FormatGIF},
		{"RIFF\x00\x00\x00\x00WEBP", media.FormatWebP},
		{"RIFF\x00\x00\x00\x00WAVE", ""},
		{"GIF88a", ""},
		{"\x89PNG\r\n\x1a", ""},
		{"BM", ""},
		{"", ""},
	} {
		if got := detect([]byte(tc.head)); got != tc.want {
			t.Errorf("detect(%q) = %q, want %q", tc.head, got, tc.want)
		}
	}
}

// gifFirstDescriptor is the offset of the first image descriptor.
func gifFirstDescriptor(t *testing.T, b []byte) int {
	t.Helper()
	i := 13
	if b[10]&0x80 != 0 {
		i += 3 << (b[10]&7 + 1)
	}
	for b[i] == 0x21 {
		i += 2
		for b[i] != 0 {
			i += 1 + int(b[i])
		}
		i++
	}
	if b[i] != 0x2c {
		t.Fatalf("no descriptor at %d", i)
	}
	return i
}
