package imaging

import (
	"bufio"
	"compress/lzw"
	"compress/zlib"
	"context"
	"errors"
	"io"

	"golang.org/x/image/vp8"
	"golang.org/x/image/vp8l"

	"github.com/acme/postsvc/ports/media"
)

// The cleaner copies the compressed pixel data byte for byte, but an upload must also be
// refused when that data does not decode (the contract's 415): otherwise the image is stored
// and every request for its thumbnail fails. So, while it copies, Clean feeds the pixel data
// to a check that decodes it as the decoders the thumbnails use would, without keeping the
// pixels where the format allows it:
//
//   - PNG: the IDAT stream is inflated and counted row by row (each row's filter byte must
//     be 0 to 4, the rows of every interlace pass must all be there, nothing may follow them,
//     and the zlib checksum must hold). Memory: zlib's window.
//   - GIF: each frame's LZW data is decoded and counted (exactly width × height pixels, each
//     inside the frame's colour table). Memory: one buffer.
//   - WebP: the VP8 or VP8L bitstream is decoded by golang.org/x/image, which holds the
//     whole frame; those decodes share the decode budget with thumbnails
//     (Config.DecodeMemory), so large ones take turns instead of holding a frame each. (The alpha of a lossy file, ALPH, is not
//     checked.)
//   - JPEG: not checked; the standard library's decoder accepts any scan data it can read.
//     Its scans are counted, though (MaxJPEGScans, in jpeg.go): each costs a decode a pass
//     over the whole image.

// pixelCheck decodes what the cleaner writes to it in a goroutine of its own (the decoders
// pull; the cleaner pushes).
type pixelCheck struct {
	pw   *io.PipeWriter
	done chan error
	err  error
	shut bool
}

func newPixelCheck(check func(r io.Reader) error) *pixelCheck {
	pr, pw := io.Pipe()
	p := &pixelCheck{pw: pw, done: make(chan error, 1)}
	go func() {
		err := check(pr)
		// Whatever ends the check, the cleaner's writes must not block on the pipe.
		_ = pr.CloseWithError(errCheckEnded)
		p.done <- err
	}()
	return p
}

// errCheckEnded is what a write after the check ended returns; the check's own result is
// what counts (see feed).
var errCheckEnded = errors.New("imaging: pixel check ended")

// feed writes b to the check. A check that ended early (it found an error, or more data
// than the image holds) makes the copy stop at once.
func (p *pixelCheck) feed(b []byte) {
	if p.shut || p.err != nil {
		return
	}
	if _, err := p.pw.Write(b); err != nil {
		p.err = p.close()
	}
}

// close ends the input and returns the check's result.
func (p *pixelCheck) close() error {
	if !p.shut {
		p.shut = true
		_ = p.pw.Close()
		if err := <-p.done; err != nil && p.err == nil {
			p.err = err
		}
	}
	return p.err
}

// abort ends the check without a result (the cleaner failed on its own).
func (p *pixelCheck) abort() {
	if !p.shut {
		p.shut = true
		_ = p.pw.CloseWithError(errCheckEnded)
		if err := <-p.done; err != nil {
			p.err = err // not reported: the cleaner's own error is
		}
	}
}

// failed reports the error of a check that ended early, so the cleaner stops copying.
func (p *pixelCheck) failed() error { return p.err }

// pngPixels checks an IDAT stream against the header ihdr (13 bytes).
func pngPixels(ihdr []byte) func(io.Reader) error {
	width := int64(uint32(ihdr[0])<<24 | uint32(ihdr[1])<<16 | uint32(ihdr[2])<<8 | uint32(ihdr[3]))
	height := int64(uint32(ihdr[4])<<24 | uint32(ihdr[5])<<16 | uint32(ihdr[6])<<8 | uint32(ihdr[7]))
	depth, colour, interlace := int64(ihdr[8]), ihdr[9], ihdr[12]
	channels := map[byte]int64{0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
	bits := depth * channels
	type pass struct{ x, y, dx, dy int64 }
	passes := []pass{{0, 0, 1, 1}}
	if interlace == 1 {
		passes = []pass{{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}}
	}
	return func(r io.Reader) error {
		br := bufio.NewReaderSize(r, 32<<10) // a ByteReader: zlib reads no further than its stream
		zr, err := zlib.NewReader(br)
		if err != nil {
			return unsupported(fPNG, "pixel data is not a zlib stream: %v", err)
		}
		// One buffer for the whole check (io.CopyN to io.Discard would take a pooled one per
		// row, and pools keep nothing under the race detector).
		buf := make([]byte, 32<<10)
		for _, p := range passes {
			w, h := (width-p.x+p.dx-1)/p.dx, (height-p.y+p.dy-1)/p.dy
			if w <= 0 || h <= 0 {
				continue
			}
			rowBytes := 1 + (w*bits+7)/8 // the filter byte, then the row
			for range h {
				for left := rowBytes; left > 0; {
					n, err := io.ReadFull(zr, buf[:min(left, int64(len(buf)))])
					if err != nil {
						return unsupported(fPNG, "pixel data ends early (%d of a row's %d bytes left): %v", left-int64(n), rowBytes, err)
					}
					if left == rowBytes && buf[0] > 4 {
						return unsupported(fPNG, "row filter %d is not 0 to 4", buf[0])
					}
					left -= int64(n)
				}
			}
		}
		// The stream must end here, and its checksum hold.
		extra := buf[:1]
		if n, err := io.ReadFull(zr, extra); n != 0 {
			return unsupported(fPNG, "more pixel data than the image holds")
		} else if !errors.Is(err, io.EOF) {
			return unsupported(fPNG, "pixel data does not end well: %v", err)
		}
		if n, _ := br.Read(extra); n != 0 {
			return unsupported(fPNG, "bytes follow the pixel data's zlib stream")
		}
		return nil
	}
}

// gifPixels checks one frame's LZW data: litWidth is the minimum code size byte, palette
// the number of colours of the frame's table.
func gifPixels(width, height int64, litWidth byte, palette int) func(io.Reader) error {
	return func(r io.Reader) error {
		if litWidth < 2 || litWidth > 8 {
			return unsupported(fGIF, "LZW code size %d is not 2 to 8", litWidth)
		}
		if palette == 0 {
			return unsupported(fGIF, "a frame has no colour table")
		}
		lr := lzw.NewReader(r, lzw.LSB, int(litWidth))
		defer func() { _ = lr.Close() }()
		buf := make([]byte, 32<<10)
		for left := width * height; left > 0; {
			n, err := lr.Read(buf[:min(int64(len(buf)), left)])
			if palette < 256 {
				for _, px := range buf[:n] {
					if int(px) >= palette {
						return unsupported(fGIF, "pixel %d is outside the frame's %d colours", px, palette)
					}
				}
			}
			left -= int64(n)
			if left > 0 && err != nil {
				return unsupported(fGIF, "frame data ends %d pixels early: %v", left, err)
			}
		}
		// As image/gif: the stream may end with its end code or without one, but hold no
		// more pixels.
		if n, err := lr.Read(buf[:1]); n != 0 || err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return unsupported(fGIF, "more frame data than the frame holds")
		}
		return nil
	}
}

// webpPixels decodes a VP8 or VP8L bitstream of length bytes, w×h pixels, holding its share
// of the decode budget (acquire).
func webpPixels(ctx context.Context, acquire func(context.Context, int64) (func(), error), kind string, length int64, w, h int) func(io.Reader) error {
	return func(r io.Reader) error {
		release, err := acquire(ctx, decodeBytes(media.FormatWebP, w, h))
		if err != nil {
			return err
		}
		defer release()
		if kind == "VP8L" {
			_, err = vp8l.Decode(io.LimitReader(r, length))
		} else {
			d := vp8.NewDecoder()
			d.Init(io.LimitReader(r, length), int(length))
			if _, err = d.DecodeFrameHeader(); err == nil {
				_, err = d.DecodeFrame()
			}
		}
		if err != nil {
			return unsupported(fWebP, "%s data does not decode: %v", kind, err)
		}
		return nil
	}
}
