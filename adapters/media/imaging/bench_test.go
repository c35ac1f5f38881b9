package imaging

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"testing"

	"github.com/acme/postsvc/ports/media"
)

// BenchmarkClean measures cleaning throughput per format on files with metadata: the
// 20 MiB files of the memory test (header and metadata followed by pixel data copied
// through) and real small files.
func BenchmarkClean(b *testing.B) {
	small := map[string][]byte{}
	for _, tc := range cleanCases(b) {
		switch tc.name {
		case "png metadata", "jpeg metadata big-endian", "gif metadata", "webp alpha metadata":
			small[tc.format] = tc.in
		}
	}
	big := bigFiles(b)
	m := New(Config{TempDir: b.TempDir()})
	for _, format := range []string{media.FormatJPEG, media.FormatPNG, media.FormatGIF, media.FormatWebP} {
		for size, in := range map[string][]byte{"small": small[format], "20MiB": big[format]} {
			b.Run(format+"/"+size, func(b *testing.B) {
				b.SetBytes(int64(len(in)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := m.Clean(context.Background(), bytes.NewReader(in), io.Discard, media.CleanLimits{}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkThumbnail measures a thumbnail of a 12-megapixel photo-sized source (4000×3000)
// and of small sources.
func BenchmarkThumbnail(b *testing.B) {
	photo := encodeJPEG(b, pattern(4000, 3000))
	cases := map[string][]byte{
		"jpeg 4000x3000 orientation 6": jpegWithMetadata(photo, binary.BigEndian, 6),
		"png 1000x600":                 encodePNG(b, pattern(1000, 600)),
		"webp 400x301":                 readFixture(b, "yellow_rose.lossy-with-alpha.webp"),
		"gif 400x300":                  encodeGIF(b, pattern(400, 300)),
	}
	m := New(Config{})
	for name, in := range cases {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Thumbnail(context.Background(), bytes.NewReader(in), io.Discard, 256); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
