package imaging

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"

	"golang.org/x/image/webp"

	"github.com/acme/postsvc/ports/media"
)

const (
	fWebP = media.FormatWebP
	// spoolMemory is how much of an extended WebP file's chunks a call holds in memory
	// before spilling them to a temporary file.
	spoolMemory = 256 << 10

	vp8xAnimation = 1 << 1
	vp8xXMP       = 1 << 2
	vp8xEXIF      = 1 << 3
	vp8xAlpha     = 1 << 4
)

// webp cleans a RIFF WebP file. A simple file (one VP8 or VP8L chunk) streams: its RIFF
// size is the image chunk's, known from the chunk header, and whatever follows that chunk
// (nothing, by the specification) is dropped.
//
// An extended file (VP8X first) cannot stream to w: the RIFF size comes first, but which
// chunks are dropped, and whether an orientation must be written back, is known only once
// the EXIF and XMP chunks have been read, and the specification puts them after the image
// data. The kept chunks are therefore spooled, the first 256 KiB in memory and the rest in
// a temporary file (Config.TempDir), and written out behind the rewritten RIFF and VP8X
// headers once the file has been read. Memory stays bounded per call whatever the file
// size; the price is a disk round trip for extended files over 256 KiB. An io.ReadSeeker
// (or the upload already being in a file) would allow two passes instead.
//
// Kept: VP8X (EXIF and XMP flags cleared, EXIF set again when an orientation is written
// back), ICCP, ALPH, VP8, VP8L. Dropped: EXIF, XMP and any unknown chunk. Animated files
// (ANIM, ANMF) are refused: golang.org/x/image does not decode them.
func (c *cleaner) webp() error {
	h, err := c.src.next(12)
	if err != nil {
		return err
	}
	remaining := int64(binary.LittleEndian.Uint32(h[4:8])) - 4
	if remaining < 8 {
		return unsupported(fWebP, "RIFF size %d holds no chunk", remaining+4)
	}
	kind, length, err := c.webpChunkHeader(&remaining)
	if err != nil {
		return err
	}
	switch kind {
	case "VP8 ", "VP8L":
		if err := c.webpFrame(kind, length, 0, 0); err != nil {
			return err
		}
		riff := binary.LittleEndian.AppendUint32([]byte("RIFF"), uint32(4+8+padded(length))) //nolint:gosec // under the input's
		return c.webpKeep(append(riff, "WEBP"...), kind, length)
	case "VP8X":
		return c.webpExtended(length, remaining)
	default:
		return unsupported(fWebP, "first chunk is %q, not VP8, VP8L or VP8X", kind)
	}
}

func padded(n int64) int64 { return n + n&1 }

// webpChunkHeader reads a chunk header and checks that the chunk, with its padding byte,
// fits in what remains of the RIFF.
func (c *cleaner) webpChunkHeader(remaining *int64) (string, int64, error) {
	if *remaining < 8 {
		return "", 0, unsupported(fWebP, "%d bytes left in the RIFF, too few for a chunk", *remaining)
	}
	c.where = "a chunk"
	h, err := c.src.next(8)
	if err != nil {
		return "", 0, err
	}
	kind, length := string(h[:4]), int64(binary.LittleEndian.Uint32(h[4:8]))
	*remaining -= 8
	if padded(length) > *remaining {
		return "", 0, unsupported(fWebP, "chunk %q of %d bytes runs past the RIFF", kind, length)
	}
	*remaining -= padded(length)
	return kind, length, nil
}

// webpKeep writes the prefix, the chunk header and copies the chunk with its padding.
func (c *cleaner) webpKeep(prefix []byte, kind string, length int64) error {
	head := binary.LittleEndian.AppendUint32(append(prefix, kind...), uint32(length)) //nolint:gosec // read as uint32
	if sp, ok := c.dst.(*spool); ok {
		if err := sp.reserve(int64(len(head)) + padded(length)); err != nil {
			return err
		}
	}
	if err := c.emit(head); err != nil {
		return err
	}
	if kind != "VP8 " && kind != "VP8L" {
		return c.copyN(padded(length), nil)
	}
	// The image data feeds the pixel check webpFrame started (when one runs).
	if err := c.copyN(length, c.feedPixels); err != nil {
		return err
	}
	if err := c.pixelsFailed(); err != nil {
		return err
	}
	if err := c.copyN(padded(length)-length, nil); err != nil {
		return err
	}
	return c.endPixels()
}

// webpFrame reads the start of a VP8 or VP8L chunk (without consuming it), answers the
// pixel limit from its dimensions, checks they are the canvas' when there is one, and has
// golang.org/x/image decode the header.
func (c *cleaner) webpFrame(kind string, length int64, canvasW, canvasH int) error {
	var width, height, n int
	switch kind {
	case "VP8 ":
		n = 10
		if length < int64(n) {
			return unsupported(fWebP, "VP8 chunk of %d bytes", length)
		}
		p, err := c.src.peek(n)
		if err != nil {
			return err
		}
		if p[0]&1 != 0 || p[3] != 0x9d || p[4] != 0x01 || p[5] != 0x2a {
			return unsupported(fWebP, "VP8 chunk does not start with a key frame")
		}
		width = int(binary.LittleEndian.Uint16(p[6:8]) & 0x3fff)
		height = int(binary.LittleEndian.Uint16(p[8:10]) & 0x3fff)
	default:
		n = 5
		if length < int64(n) {
			return unsupported(fWebP, "VP8L chunk of %d bytes", length)
		}
		p, err := c.src.peek(n)
		if err != nil {
			return err
		}
		bits := binary.LittleEndian.Uint32(p[1:5])
		if p[0] != 0x2f || bits>>29 != 0 {
			return unsupported(fWebP, "VP8L chunk has no VP8L signature")
		}
		width, height = int(bits&0x3fff)+1, int(bits>>14&0x3fff)+1
	}
	if canvasW == 0 {
		if err := c.checkPixels(fWebP, width, height); err != nil {
			return err
		}
	} else if width != canvasW || height != canvasH {
		return unsupported(fWebP, "%s frame is %d×%d on a %d×%d canvas", kind, width, height, canvasW, canvasH)
	}
	p, err := c.src.peek(n)
	if err != nil {
		return err
	}
	if err := c.webpDecodeConfig(kind, length, p, width, height); err != nil {
		return err
	}
	if c.verify {
		c.startPixels(webpPixels(c.src.ctx, c.acquire, kind, length, width, height))
	}
	return nil
}

// webpDecodeConfig has golang.org/x/image decode a RIFF holding the first chunk's header
// and first bytes.
func (c *cleaner) webpDecodeConfig(kind string, length int64, start []byte, width, height int) error {
	hdr := binary.LittleEndian.AppendUint32([]byte("RIFF"), uint32(4+8+padded(length)))             //nolint:gosec // fits the input's
	hdr = binary.LittleEndian.AppendUint32(append(append(hdr, "WEBP"...), kind...), uint32(length)) //nolint:gosec // read as uint32
	cfg, err := webp.DecodeConfig(bytes.NewReader(append(hdr, start...)))
	if err != nil {
		return unsupported(fWebP, "header does not decode: %v", err)
	}
	if cfg.Width != width || cfg.Height != height {
		return unsupported(fWebP, "header decodes to %d×%d, not %d×%d", cfg.Width, cfg.Height, width, height)
	}
	return nil
}

func (c *cleaner) webpExtended(length, remaining int64) error {
	if length != 10 {
		return unsupported(fWebP, "VP8X chunk of %d bytes", length)
	}
	p, err := c.src.next(10)
	if err != nil {
		return err
	}
	vp8x := bytes.Clone(p)
	flags := vp8x[0]
	canvasW := int(uint32(vp8x[4])|uint32(vp8x[5])<<8|uint32(vp8x[6])<<16) + 1
	canvasH := int(uint32(vp8x[7])|uint32(vp8x[8])<<8|uint32(vp8x[9])<<16) + 1
	if err := c.checkPixels(fWebP, canvasW, canvasH); err != nil {
		return err
	}
	if flags&vp8xAnimation != 0 {
		return unsupported(fWebP, "animated WebP does not decode")
	}
	if err := c.webpDecodeConfig("VP8X", 10, vp8x, canvasW, canvasH); err != nil {
		return err
	}

	sp := &spool{dir: c.tempDir, discard: c.discard}
	defer sp.close()
	c.dst = sp
	var seenImage, seenALPH, seenEXIF bool
	var order binary.ByteOrder
	for remaining > 0 {
		if err := c.src.ctx.Err(); err != nil {
			return err
		}
		kind, length, err := c.webpChunkHeader(&remaining)
		if err != nil {
			return err
		}
		switch kind {
		case "VP8 ", "VP8L":
			if seenImage {
				return unsupported(fWebP, "more than one image chunk")
			}
			if kind == "VP8L" && seenALPH {
				return unsupported(fWebP, "ALPH before a VP8L chunk")
			}
			seenImage = true
			if err := c.webpFrame(kind, length, canvasW, canvasH); err != nil {
				return err
			}
			err = c.webpKeep(nil, kind, length)
		case "ICCP", "ALPH":
			if seenImage {
				return unsupported(fWebP, "%s chunk after the image data", kind)
			}
			if kind == "ALPH" {
				if flags&vp8xAlpha == 0 || seenALPH {
					return unsupported(fWebP, "ALPH chunk without the alpha flag, or twice")
				}
				seenALPH = true
			}
			err = c.webpKeep(nil, kind, length)
		case "ANIM", "ANMF":
			return unsupported(fWebP, "animated WebP does not decode")
		case "VP8X":
			return unsupported(fWebP, "second VP8X chunk")
		case "EXIF":
			if seenEXIF {
				err = c.src.copyN(nil, padded(length), nil)
				break
			}
			seenEXIF = true
			k := min(length, maxEXIFRead)
			var b []byte
			if b, err = c.src.next(int(k)); err == nil {
				c.info.Orientation, order = exifOrientation(stripExifHeader(b))
				err = c.src.copyN(nil, padded(length)-k, nil)
			}
		default: // XMP and anything unknown
			err = c.src.copyN(nil, padded(length), nil)
		}
		if err != nil {
			return err
		}
	}
	if !seenImage {
		return unsupported(fWebP, "no VP8 or VP8L chunk")
	}

	c.dst = c.out
	var exif []byte
	vp8x[0] = flags &^ (vp8xXMP | vp8xEXIF)
	if o := c.info.Orientation; o != 1 {
		vp8x[0] |= vp8xEXIF
		tiff := minimalTIFF(order, o)
		exif = binary.LittleEndian.AppendUint32([]byte("EXIF"), minimalTIFFSize)
		exif = append(exif, tiff...)
	}
	size := 4 + 8 + 10 + sp.n + int64(len(exif))
	if size > 1<<32-1 {
		return unsupported(fWebP, "cleaned file would be over 4 GiB")
	}
	head := binary.LittleEndian.AppendUint32([]byte("RIFF"), uint32(size)) //nolint:gosec // checked above
	head = append(append(head, "WEBPVP8X\x0a\x00\x00\x00"...), vp8x...)
	if err := c.emit(head); err != nil {
		return err
	}
	if err := sp.writeTo(c.out, c.src.buf); err != nil {
		return err
	}
	return c.emit(exif)
}

// spool holds the kept chunks of an extended WebP file: spoolMemory bytes in memory, the
// rest in a temporary file. When discard is set it only counts.
type spool struct {
	dir     string
	discard bool
	mem     []byte
	file    *os.File
	n       int64
}

func (s *spool) Write(p []byte) (int, error) {
	if err := s.reserve(int64(len(p))); err != nil {
		return 0, err
	}
	s.n += int64(len(p))
	switch {
	case s.discard:
		return len(p), nil
	case s.file == nil:
		s.mem = append(s.mem, p...)
		return len(p), nil
	}
	return s.file.Write(p)
}

// reserve makes room for n more bytes: in memory, grown to the exact size (a chunk's
// length is known before it is copied, so webpKeep reserves it whole), or, when that would
// pass spoolMemory, in a temporary file.
func (s *spool) reserve(n int64) error {
	if s.discard || s.file != nil || int64(cap(s.mem)-len(s.mem)) >= n {
		return nil
	}
	if int64(len(s.mem))+n <= spoolMemory {
		s.mem = append(make([]byte, 0, len(s.mem)+int(n)), s.mem...)
		return nil
	}
	f, err := os.CreateTemp(s.dir, tempPattern)
	if err != nil {
		return err
	}
	s.file = f
	return nil
}

// writeTo writes the spooled bytes to w, using buf to copy from the file.
func (s *spool) writeTo(w io.Writer, buf []byte) error {
	if s.discard {
		return nil
	}
	if _, err := w.Write(s.mem); err != nil {
		return err
	}
	if s.file == nil {
		return nil
	}
	if _, err := s.file.Seek(0, io.SeekStart); err != nil {
		return err
	}
	n, err := io.CopyBuffer(w, struct{ io.Reader }{s.file}, buf)
	if err == nil && n != s.n-int64(len(s.mem)) {
		err = errors.New("imaging: WebP spool file is short")
	}
	return err
}

func (s *spool) close() {
	if s.file != nil {
		_ = s.file.Close()
		_ = os.Remove(s.file.Name())
	}
}
