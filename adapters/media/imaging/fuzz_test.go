package imaging

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"testing/iotest"

	"github.com/acme/postsvc/ports/media"
)

// fuzzMaxPixels keeps decoding in the fuzz targets fast.
const fuzzMaxPixels = 1 << 18

// smallSeeds are small files of each format, with and without metadata: the committed
// corpus (testdata/fuzz/FuzzClean) is written from them by TestWriteFuzzCorpus.
func smallSeeds(t testing.TB) map[string][]byte {
	t.Helper()
	m := pattern(8, 6)
	p, j, g := encodePNG(t, m), encodeJPEG(t, m), encodeGIF(t, m, pattern(4, 4))
	lossless := readFixture(t, "gopher-doc.8bpp.lossless.webp")
	return map[string][]byte{
		"png":               p,
		"png-metadata":      pngWithMetadata(p, 6),
		"jpeg":              j,
		"jpeg-metadata":     jpegWithMetadata(j, binary.LittleEndian, 6),
		"gif":               g,
		"gif-metadata":      gifWithMetadata(g),
		"webp-lossless":     lossless,
		"webp-metadata":     webpWithMetadata(t, lossless, binary.BigEndian, 8),
		"png-bomb-header":   pngHeader(100000, 100000, 6),
		"jpeg-progressive":  readFixture(t, "video-001.q50.420.progressive.jpeg"),
		"webp-lossy-simple": readFixture(t, "blue-purple-pink.lossy.webp"),
	}
}

// TestFuzzCorpusIsCurrent checks that the committed seed corpus (testdata/fuzz/FuzzClean)
// holds exactly the seeds smallSeeds makes, so it cannot drift from the code; with
// IMAGING_WRITE_CORPUS=1 it rewrites the corpus instead.
func TestFuzzCorpusIsCurrent(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzClean")
	write := os.Getenv("IMAGING_WRITE_CORPUS") != ""
	if write {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, b := range smallSeeds(t) {
		path := filepath.Join(dir, "seed-"+name)
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
		if write {
			if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != body {
			t.Errorf("%s is missing or stale (%v): run IMAGING_WRITE_CORPUS=1 go test -run TestFuzzCorpusIsCurrent ./adapters/media/imaging/", path, err)
		}
	}
}

func FuzzClean(f *testing.F) {
	for _, b := range smallSeeds(f) {
		f.Add(b)
	}
	for _, tc := range cleanCases(f) {
		if len(tc.in) < 8<<10 {
			f.Add(tc.in)
		}
	}
	m := New(Config{TempDir: f.TempDir()})
	ctx := context.Background()
	limits := media.CleanLimits{MaxPixels: fuzzMaxPixels}
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		info, err := m.Clean(ctx, bytes.NewReader(in), &out, limits)
		if err != nil {
			if !errors.Is(err, media.ErrUnsupportedFormat) && !errors.Is(err, media.ErrTooManyPixels) {
				t.Fatalf("error of no kind: %v", err)
			}
			if out.Len() > len(in)+64 {
				t.Fatalf("%d bytes written for %d read before failing", out.Len(), len(in))
			}
			return
		}
		got := out.Bytes()
		if len(got) > len(in)+64 {
			t.Fatalf("%d bytes out of %d", len(got), len(in))
		}
		if info.Format != detect(in) || info.ContentType != "image/"+info.Format || int64(info.Width)*int64(info.Height) > fuzzMaxPixels {
			t.Fatalf("info %+v", info)
		}
		orientation, err := checkStructure(info.Format, got)
		if err != nil {
			t.Fatalf("structure of the output: %v", err)
		}
		if orientation != info.Orientation {
			t.Fatalf("output carries orientation %d, info says %d", orientation, info.Orientation)
		}
		var again bytes.Buffer
		info2, err := m.Clean(ctx, bytes.NewReader(got), &again, limits)
		if err != nil || !bytes.Equal(again.Bytes(), got) || info2 != info {
			t.Fatalf("cleaning the output: %v, same %v, %+v then %+v", err, bytes.Equal(again.Bytes(), got), info, info2)
		}
		var slow bytes.Buffer
		if _, err := m.Clean(ctx, iotest.OneByteReader(bytes.NewReader(in)), &slow, limits); err != nil || !bytes.Equal(slow.Bytes(), got) {
			t.Fatalf("a byte at a time: %v, same %v", err, bytes.Equal(slow.Bytes(), got))
		}
		cfg, format, err := image.DecodeConfig(bytes.NewReader(got))
		if err != nil || format != info.Format || cfg.Width != info.Width || cfg.Height != info.Height {
			t.Fatalf("output DecodeConfig: %v %s %dx%d, info %+v", err, format, cfg.Width, cfg.Height, info)
		}
		mIn, _, err := image.Decode(bytes.NewReader(in))
		if err != nil {
			return
		}
		mOut, _, err := image.Decode(bytes.NewReader(got))
		if err != nil {
			t.Fatalf("the input decodes, the output does not: %v", err)
		}
		if where := samePixels(mIn, mOut); where != "" {
			t.Fatalf("pixels differ at %s", where)
		}
	})
}

func FuzzDetect(f *testing.F) {
	for _, b := range smallSeeds(f) {
		f.Add(b[:min(len(b), 64)])
	}
	for _, s := range []string{"", "\xff", "\xff\xd8", "GIF8", "RIFF\x00\x00\x00\x00WEBPVP8 ", "\x89PNG\r\n\x1a\n", "BM6\x00", "<svg"} {
		f.Add([]byte(s))
	}
	m := New(Config{})
	f.Fuzz(func(t *testing.T, in []byte) {
		got := detect(in)
		if len(in) > 12 && detect(in[:12]) != got {
			t.Fatalf("detect looks past 12 bytes: %q", got)
		}
		if _, format, err := image.DecodeConfig(bytes.NewReader(in)); err == nil && format != got {
			t.Fatalf("the standard library reads %s, detect says %q", format, got)
		}
		_, err := m.Clean(context.Background(), bytes.NewReader(in), &bytes.Buffer{}, media.CleanLimits{MaxPixels: fuzzMaxPixels})
		if got == "" && !errors.Is(err, media.ErrUnsupportedFormat) {
			t.Fatalf("undetected, Clean says %v", err)
		}
		if err != nil && got != "" && !bytes.Contains([]byte(err.Error()), []byte(fmt.Sprintf(": %s: ", got))) {
			t.Fatalf("a %s error that does not name the format: %v", got, err)
		}
	})
}
