package imaging

import (
	"bytes"
	"compress/lzw"
	"compress/zlib"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"testing"

	"github.com/acme/postsvc/ports/media"
)

const bigFile = 20 << 20

// noise is n bytes of random data, with no 0xff byte so it can stand for entropy-coded
// JPEG data as it is.
func noise(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{3, 4}).Read(b)
	return bytes.ReplaceAll(b, []byte{0xff}, []byte{0xfe})
}

var (
	bigOnce  sync.Once
	bigCache map[string][]byte
	// bigTails holds, per format, the last 16 KiB of the file's pixel data, which the
	// output must hold unchanged (GIF has none: its data is split into sub-blocks).
	bigTails map[string][]byte
)

// bigFiles are valid 20 MiB files of each format: a real header followed by pixel data that
// Clean copies byte for byte (checking that it decodes, where it does that without holding
// the pixels), and metadata to drop.
func bigFiles(t testing.TB) map[string][]byte {
	t.Helper()
	bigOnce.Do(func() { bigCache = makeBigFiles(t) })
	return bigCache
}

func makeBigFiles(t testing.TB) map[string][]byte {
	data := noise(bigFile)
	bigTails = map[string][]byte{"jpeg": data[len(data)-16<<10:], "webp": data[len(data)-16<<10:]}
	files := map[string][]byte{}

	j := encodeJPEG(t, pattern(64, 64))
	sos := bytes.Index(j, []byte{0xff, 0xda})
	sosEnd := sos + 2 + int(binary.BigEndian.Uint16(j[sos+2:]))
	files["jpeg"] = jpegWithMetadata(append(append(bytes.Clone(j[:sosEnd]), data...), 0xff, 0xd9), binary.BigEndian, 6)

	// PNG: 2048×2560 RGBA rows of noise (filter 0), in a zlib stream of stored blocks, so
	// the IDAT data is as large as the rows.
	const pngW, pngH = 2048, 2560
	var raw bytes.Buffer
	for y := range pngH {
		raw.WriteByte(0)
		raw.Write(data[(y*4*pngW)%(len(data)-4*pngW):][:4*pngW])
	}
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, zlib.NoCompression)
	_, _ = zw.Write(raw.Bytes())
	_ = zw.Close()
	p := encodePNG(t, pattern(64, 64))
	ihdr := bytes.Clone(p[16:29])
	binary.BigEndian.PutUint32(ihdr[0:4], pngW)
	binary.BigEndian.PutUint32(ihdr[4:8], pngH)
	ihdr[8], ihdr[9], ihdr[12] = 8, 6, 0 // 8-bit RGBA, not interlaced
	big := append([]byte(pngSignature), pngChunk("IHDR", ihdr)...)
	for rest := z.Bytes(); len(rest) > 0; {
		n := min(len(rest), 1<<20)
		big = append(big, pngChunk("IDAT", rest[:n])...)
		if n >= 16<<10 {
			bigTails["png"] = rest[n-16<<10 : n]
		}
		rest = rest[n:]
	}
	files["png"] = pngWithMetadata(append(big, pngChunk("IEND", nil)...), 6)

	// GIF: a 4096×4096 frame of noise in the global table's colours, LZW-coded.
	gb := append([]byte("GIF89a"), 0, 0x10, 0, 0x10, 0xf7, 0, 0) // 4096×4096, a global table of 256
	for i := range 256 {
		gb = append(gb, byte(i), byte(255-i), byte(i/2))
	}
	gb = append(gb, 0x2c, 0, 0, 0, 0, 0, 0x10, 0, 0x10, 0, 8)
	pix := make([]byte, 4096*4096)
	for i := range pix {
		pix[i] = data[i]
	}
	var lz bytes.Buffer
	lw := lzw.NewWriter(&lz, lzw.LSB, 8)
	_, _ = lw.Write(pix)
	_ = lw.Close()
	gb = append(gb, gifSubBlocks(lz.Bytes())...)
	files["gif"] = gifWithMetadata(append(gb, 0x3b))

	// WebP: a VP8L bitstream of one colour (five one-symbol prefix codes: no bit per pixel)
	// followed by the noise, which the decoder never reads.
	vp8l := binary.LittleEndian.AppendUint32([]byte{0x2f}, 63|63<<14)
	vp8l = append(vp8l, 0x88, 0x88, 0x08, 0x00) // and one byte more, so the chunk is odd
	w := binary.LittleEndian.AppendUint32([]byte("RIFF"), uint32(4+8+len(vp8l)+len(data)+1))
	w = append(w, "WEBPVP8L"...)
	w = binary.LittleEndian.AppendUint32(w, uint32(len(vp8l)+len(data)))
	w = append(append(append(w, vp8l...), data...), 0) // odd: a padding byte
	files["webp"] = webpWithMetadata(t, w, binary.LittleEndian, 6)
	return files
}

// Cleaning a 20 MiB file allocates a small fixed amount, not the file: the headers it
// inspects and two buffers. For WebP the chunks are spooled to a temporary file, which is
// removed afterwards.
func TestCleanMemoryIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 80 MiB of files")
	}
	const bound = 1 << 20
	for name, in := range bigFiles(t) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			m := New(Config{TempDir: dir})
			out := &countingWriter{}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			info, err := m.Clean(context.Background(), bytes.NewReader(in), out, media.CleanLimits{MaxPixels: DefaultMaxPixels})
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatal(err)
			}
			if wantO := map[string]int{"gif": 1}[name]; info.Orientation != max(wantO, 6*(1-wantO)) {
				t.Fatalf("orientation %d", info.Orientation)
			}
			if out.n < bigFile || out.n > int64(len(in)) {
				t.Fatalf("%d bytes out of %d", out.n, len(in))
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > bound {
				t.Fatalf("Clean of %d bytes allocated %d bytes, want under %d", len(in), alloc, bound)
			} else {
				t.Logf("%s: %d bytes in, %d out, %d bytes allocated", name, len(in), out.n, alloc)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Fatalf("temporary files left: %v", left)
			}
			// Again, keeping the output, to check it (through the WebP spool file too).
			got, _, err := cleanBytes(t, in)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := checkStructure(name, got); err != nil {
				t.Fatalf("structure: %v", err)
			}
			if tail := bigTails[name]; name != "gif" && !bytes.Contains(got, tail) {
				t.Fatal("the end of the pixel data is not in the output")
			}
		})
	}
}

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

// 64 uploads at once, each a 20 MiB file, hold a few MiB between them, not 64 files.
func TestCleanConcurrentMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 80 MiB of files")
	}
	const calls, perCall = 64, 256 << 10
	for _, name := range []string{"jpeg", "png"} {
		t.Run(name, func(t *testing.T) {
			in := bigFiles(t)[name]
			m := New(Config{})
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			var wg sync.WaitGroup
			errs := make(chan error, calls)
			for range calls {
				wg.Go(func() {
					_, err := m.Clean(context.Background(), bytes.NewReader(in), &countingWriter{}, media.CleanLimits{})
					errs <- err
				})
			}
			wg.Wait()
			runtime.ReadMemStats(&after)
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > calls*perCall {
				t.Fatalf("%d concurrent cleanings of %d bytes allocated %d bytes in all, want under %d", calls, len(in), alloc, calls*perCall)
			} else {
				t.Logf("%d concurrent cleanings of %d bytes: %d bytes allocated in all", calls, len(in), alloc)
			}
		})
	}
}
