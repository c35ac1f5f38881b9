package imaging

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image/jpeg"

	"github.com/acme/postsvc/ports/media"
)

const fJPEG = media.FormatJPEG

// jpeg walks the markers: segments before, between and after scans are kept or dropped by
// their kind, the entropy-coded data of every scan is copied through (progressive files
// have many scans, and an APPn or COM segment between them is dropped like any other).
// Nothing after EOI is kept: trailing bytes are where Multi-Picture Format secondary images
// (with EXIF of their own) and appended archives live.
//
// Kept: JFIF APP0, ICC_PROFILE APP2, Adobe APP14 (it tells the colour transform), the
// tables, the frame header and the scans. Dropped: every other APPn (EXIF and XMP in
// APP1, MPF in APP2, Photoshop/IPTC in APP13, ...) and COM. Restart markers stray between
// segments carry nothing and are dropped, as are fill bytes before markers.
func (c *cleaner) jpeg() error {
	soi, err := c.src.next(2)
	if err != nil {
		return err
	}
	if err := c.emit(soi); err != nil {
		return err
	}
	var seenSOF, seenSOS, seenEXIF bool
	for {
		if err := c.src.ctx.Err(); err != nil {
			return err
		}
		c.where = "a marker"
		b, err := c.src.byte()
		if err != nil {
			return err
		}
		if b != 0xff {
			return unsupported(fJPEG, "byte 0x%02x at offset %d where a marker should be", b, c.src.off-1)
		}
		marker := byte(0xff)
		for marker == 0xff {
			if marker, err = c.src.byte(); err != nil {
				return err
			}
		}
		switch {
		case marker == 0xd9: // EOI
			if !seenSOS {
				return unsupported(fJPEG, "end of image before any scan")
			}
			return c.emit([]byte{0xff, 0xd9})
		case marker >= 0xd0 && marker <= 0xd7:
			continue
		case marker == 0x00 || marker == 0x01 || marker == 0xd8:
			return unsupported(fJPEG, "unexpected marker 0x%02x", marker)
		}
		lb, err := c.src.next(2)
		if err != nil {
			return err
		}
		length := int(binary.BigEndian.Uint16(lb))
		n := length - 2
		if n < 0 {
			return unsupported(fJPEG, "segment 0x%02x length %d is shorter than its length field", marker, length)
		}
		head := []byte{0xff, marker, lb[0], lb[1]}
		c.where = "a segment"
		switch {
		case marker == 0xc0 || marker == 0xc1 || marker == 0xc2:
			if seenSOF {
				return unsupported(fJPEG, "more than one frame header")
			}
			seenSOF = true
			if err := c.jpegFrame(head, n); err != nil {
				return err
			}
		case marker >= 0xc3 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc:
			return unsupported(fJPEG, "frame type 0x%02x (lossless, hierarchical or arithmetic coding) does not decode", marker)
		case marker == 0xc4 || marker == 0xdb || marker == 0xdd: // DHT, DQT, DRI
			if err := c.keepSegment(head, n); err != nil {
				return err
			}
		case marker == 0xda: // SOS
			if !seenSOF {
				return unsupported(fJPEG, "scan before the frame header")
			}
			seenSOS = true
			if c.scans++; c.scans > MaxJPEGScans {
				if c.verify {
					return fmt.Errorf("%w: jpeg: more than %d scans (passes over its pixels)", media.ErrTooManyPixels, MaxJPEGScans)
				}
				c.overScans = true
			}
			if err := c.keepSegment(head, n); err != nil {
				return err
			}
			c.where = "a scan"
			if err := c.jpegScan(); err != nil {
				return err
			}
		case marker == 0xe1 && !seenEXIF && c.prefixed(n, exifHeader):
			seenEXIF = true
			if err := c.jpegEXIF(n); err != nil {
				return err
			}
		case marker == 0xe0 && c.prefixed(n, "JFIF\x00"),
			marker == 0xe2 && c.prefixed(n, "ICC_PROFILE\x00"),
			marker == 0xee && c.prefixed(n, "Adobe"):
			if err := c.keepSegment(head, n); err != nil {
				return err
			}
		case marker >= 0xe0 && marker <= 0xef || marker == 0xfe: // other APPn, COM
			if err := c.src.copyN(nil, int64(n), nil); err != nil {
				return err
			}
		default:
			return unsupported(fJPEG, "marker 0x%02x is not supported", marker)
		}
	}
}

// prefixed reports whether the next n bytes of the input start with p. A read error is
// left for the caller's next read to meet.
func (c *cleaner) prefixed(n int, p string) bool {
	if n < len(p) {
		return false
	}
	b, err := c.src.peek(len(p))
	return err == nil && string(b) == p
}

func (c *cleaner) keepSegment(head []byte, n int) error {
	if err := c.emit(head); err != nil {
		return err
	}
	return c.copyN(int64(n), nil)
}

// jpegFrame reads the frame header, answers the pixel limit and has the standard library
// decode the header (SOI, this frame header and the start of a scan) to confirm it.
func (c *cleaner) jpegFrame(head []byte, n int) error {
	p, err := c.src.next(n)
	if err != nil {
		return err
	}
	if n < 6 || n != 6+3*int(p[5]) {
		return unsupported(fJPEG, "frame header of %d bytes for %d components", n, func() int {
			if n < 6 {
				return 0
			}
			return int(p[5])
		}())
	}
	height, width := int(binary.BigEndian.Uint16(p[1:3])), int(binary.BigEndian.Uint16(p[3:5]))
	if err := c.checkPixels(fJPEG, width, height); err != nil {
		return err
	}
	hdr := make([]byte, 0, 2+len(head)+n+4)
	hdr = append(append(append(append(hdr, 0xff, 0xd8), head...), p...), 0xff, 0xda, 0x00, 0x08)
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(hdr))
	if err != nil {
		return unsupported(fJPEG, "frame header does not decode: %v", err)
	}
	if cfg.Width != width || cfg.Height != height {
		return unsupported(fJPEG, "frame header decodes to %d×%d, not %d×%d", cfg.Width, cfg.Height, width, height)
	}
	return c.emit(head, hdr[2+len(head):2+len(head)+n])
}

// jpegEXIF reads an EXIF APP1 segment (at most 65,533 bytes) for its orientation and
// writes back a minimal one when the orientation is not 1.
func (c *cleaner) jpegEXIF(n int) error {
	p, err := c.src.next(n)
	if err != nil {
		return err
	}
	orientation, order := exifOrientation(p[len(exifHeader):])
	if orientation == 1 {
		return nil
	}
	c.info.Orientation = orientation
	const length = 2 + len(exifHeader) + minimalTIFFSize
	return c.emit([]byte{0xff, 0xe1, byte(length >> 8), byte(length & 0xff)}, []byte(exifHeader), minimalTIFF(order, orientation))
}

// jpegScan copies entropy-coded data up to the next marker that is neither a stuffed 0xff
// nor a restart marker, leaving that marker unread.
func (c *cleaner) jpegScan() error {
	for {
		if c.src.buffered() < 2 {
			if err := c.src.fill(2); err != nil {
				return err
			}
		}
		data := c.src.buf[c.src.pos:c.src.end]
		i := bytes.IndexByte(data, 0xff)
		if i < 0 || i == len(data)-1 {
			// No marker here, or one whose second byte is not read yet: copy up to it.
			k := len(data)
			if i >= 0 {
				k = i
			}
			if err := c.copyN(int64(k), nil); err != nil {
				return err
			}
			continue
		}
		if next := data[i+1]; next == 0x00 || next >= 0xd0 && next <= 0xd7 {
			if err := c.copyN(int64(i+2), nil); err != nil {
				return err
			}
			continue
		}
		return c.copyN(int64(i), nil)
	}
}
