package imaging

import (
	"bytes"
	"encoding/binary"
	"image/gif"

	"github.com/acme/postsvc/ports/media"
)

const fGIF = media.FormatGIF

// gifKeptApps are the application extensions that change how the image is shown: looping
// (NETSCAPE2.0 and its twin ANIMEXTS1.0) and the ICC colour profile. Any other (XMP's
// "XMP DataXMP" among them) is dropped, as are comment extensions. Plain text extensions
// are rendering and are kept.
var gifKeptApps = map[string]bool{"NETSCAPE2.0": true, "ANIMEXTS1.0": true, "ICCRGBG1012": true}

// gif copies the header, the logical screen and its colour table, and then the blocks of
// the stream up to the trailer; anything after the trailer is dropped.
func (c *cleaner) gif() error {
	h, err := c.src.next(13)
	if err != nil {
		return err
	}
	header := bytes.Clone(h)
	width, height := int(binary.LittleEndian.Uint16(header[6:8])), int(binary.LittleEndian.Uint16(header[8:10]))
	if err := c.checkPixels(fGIF, width, height); err != nil {
		return err
	}
	table := 0
	if header[10]&0x80 != 0 {
		table = 3 << (header[10]&7 + 1)
	}
	global := table / 3
	ct, err := c.src.next(table)
	if err != nil {
		return err
	}
	header = append(header, ct...)
	cfg, err := gif.DecodeConfig(bytes.NewReader(header))
	if err != nil {
		return unsupported(fGIF, "header does not decode: %v", err)
	}
	if cfg.Width != width || cfg.Height != height {
		return unsupported(fGIF, "header decodes to %d×%d, not %d×%d", cfg.Width, cfg.Height, width, height)
	}
	if err := c.emit(header); err != nil {
		return err
	}
	frames := 0
	c.where = "a block"
	for {
		if err := c.src.ctx.Err(); err != nil {
			return err
		}
		b, err := c.src.byte()
		if err != nil {
			return err
		}
		switch b {
		case 0x3b: // trailer
			if frames == 0 {
				return unsupported(fGIF, "no image before the trailer")
			}
			return c.emit([]byte{b})
		case 0x2c: // image descriptor
			frames++
			if err := c.gifImage(width, height, global); err != nil {
				return err
			}
		case 0x21: // extension
			if err := c.gifExtension(); err != nil {
				return err
			}
		default:
			return unsupported(fGIF, "block 0x%02x at offset %d is not a GIF block", b, c.src.off-1)
		}
	}
}

// gifImage copies a frame; global is the number of colours of the global table.
func (c *cleaner) gifImage(width, height, global int) error {
	d, err := c.src.next(9)
	if err != nil {
		return err
	}
	desc := append([]byte{0x2c}, d...)
	left, top := int(binary.LittleEndian.Uint16(desc[1:3])), int(binary.LittleEndian.Uint16(desc[3:5]))
	w, h := int(binary.LittleEndian.Uint16(desc[5:7])), int(binary.LittleEndian.Uint16(desc[7:9]))
	if left+w > width || top+h > height {
		return unsupported(fGIF, "frame %d×%d at %d,%d is outside the %d×%d screen", w, h, left, top, width, height)
	}
	if err := c.countFrame(fGIF, w, h); err != nil {
		return err
	}
	if err := c.emit(desc); err != nil {
		return err
	}
	table := 0
	if desc[9]&0x80 != 0 {
		table = 3 << (desc[9]&7 + 1)
	}
	// The colour table and the LZW minimum code size.
	p, err := c.src.peek(table + 1)
	if err != nil {
		return err
	}
	litWidth := p[table]
	if err := c.copyN(int64(table+1), nil); err != nil {
		return err
	}
	if c.verify {
		palette := global
		if table > 0 {
			palette = table / 3
		}
		c.startPixels(gifPixels(int64(w), int64(h), litWidth, palette))
	}
	if err := c.gifSubBlocks(true); err != nil {
		return err
	}
	return c.endPixels()
}

func (c *cleaner) gifExtension() error {
	label, err := c.src.byte()
	if err != nil {
		return err
	}
	keep := false
	switch label {
	case 0xf9, 0x01: // graphic control, plain text
		keep = true
	case 0xfe: // comment
	case 0xff: // application
		p, err := c.src.peek(12)
		keep = err == nil && p[0] == 11 && gifKeptApps[string(p[1:12])]
	default:
		return unsupported(fGIF, "unknown extension 0x%02x", label)
	}
	if keep {
		if err := c.emit([]byte{0x21, label}); err != nil {
			return err
		}
	}
	return c.gifSubBlocks(keep)
}

// gifSubBlocks copies or skips data sub-blocks up to and including the empty one.
func (c *cleaner) gifSubBlocks(keep bool) error {
	for {
		n, err := c.src.peek(1)
		if err != nil {
			return err
		}
		size := int64(n[0]) + 1
		if keep {
			// The size byte, then the data, which feeds a frame's pixel check if one runs.
			if err = c.copyN(1, nil); err == nil {
				err = c.copyN(size-1, c.feedPixels)
			}
			if err == nil {
				err = c.pixelsFailed()
			}
		} else {
			err = c.src.copyN(nil, size, nil)
		}
		if err != nil {
			return err
		}
		if size == 1 {
			return nil
		}
	}
}
