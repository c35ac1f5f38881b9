package imaging

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image/png"

	"github.com/acme/postsvc/ports/media"
)

const (
	fPNG         = media.FormatPNG
	pngSignature = "\x89PNG\r\n\x1a\n"
)

// pngKept are the chunks a decoder needs to show the image: the critical ones, colour
// (tRNS, gAMA, cHRM, sRGB, iCCP, sBIT, cICP, mDCv, cLLI), background and palette hints
// (bKGD, hIST, sPLT), pixel size (pHYs) and APNG animation (acTL, fcTL, fdAT). Everything
// else is dropped: eXIf, tEXt, zTXt, iTXt (XMP), tIME, and any private chunk, which may hold
// anything. iDOT is dropped too: it records byte offsets that dropping chunks would falsify.
var pngKept = map[string]bool{
	"IHDR": true, "PLTE": true, "IDAT": true, "IEND": true,
	"tRNS": true, "gAMA": true, "cHRM": true, "sRGB": true, "iCCP": true, "sBIT": true,
	"cICP": true, "mDCv": true, "cLLI": true, "bKGD": true, "hIST": true, "sPLT": true,
	"pHYs": true, "acTL": true, "fcTL": true, "fdAT": true,
}

// png copies the signature and the kept chunks, checking the CRC of each, up to IEND;
// anything after IEND is dropped.
func (c *cleaner) png() error {
	sig, err := c.src.next(8)
	if err != nil {
		return err
	}
	if err := c.emit(sig); err != nil {
		return err
	}
	var ihdr []byte
	var seenEXIF, seenPLTE, seenIDAT, idatEnded bool
	for {
		if err := c.src.ctx.Err(); err != nil {
			return err
		}
		c.where = "a chunk"
		h, err := c.src.next(8)
		if err != nil {
			return err
		}
		var head [8]byte
		copy(head[:], h)
		length := int64(binary.BigEndian.Uint32(head[:4]))
		kind := string(head[4:8])
		if length > 1<<31-1 {
			return unsupported(fPNG, "chunk %q length %d is over 2^31-1", kind, length)
		}
		for _, ch := range []byte(kind) {
			if ch < 'A' || ch > 'z' || ch > 'Z' && ch < 'a' {
				return unsupported(fPNG, "chunk type %q is not four letters", kind)
			}
		}
		if ihdr == nil && kind != "IHDR" {
			return unsupported(fPNG, "first chunk is %q, not IHDR", kind)
		}
		if seenIDAT && !idatEnded && kind != "IDAT" {
			// The pixel data is whole: the IDAT chunks are consecutive.
			idatEnded = true
			if err := c.endPixels(); err != nil {
				return err
			}
		}
		switch {
		case kind == "IHDR":
			if ihdr != nil {
				return unsupported(fPNG, "second IHDR")
			}
			if ihdr, err = c.pngHeader(head, length); err != nil {
				return err
			}
			continue
		case kind == "PLTE":
			if seenIDAT || seenPLTE {
				return unsupported(fPNG, "PLTE after IDAT or twice")
			}
			seenPLTE = true
		case kind == "IDAT":
			if ihdr[9] == 3 && !seenPLTE {
				return unsupported(fPNG, "palette image without PLTE before IDAT")
			}
			if idatEnded {
				return unsupported(fPNG, "IDAT chunks are not consecutive")
			}
			if !seenIDAT && c.verify {
				c.startPixels(pngPixels(ihdr))
			}
			seenIDAT = true
		case kind == "IEND":
			if !seenIDAT {
				return unsupported(fPNG, "IEND before any IDAT")
			}
		case kind == "eXIf" && !seenEXIF:
			seenEXIF = true
			if err := c.pngEXIF(head, length); err != nil {
				return err
			}
			continue
		case !pngKept[kind]:
			if kind[0] >= 'A' && kind[0] <= 'Z' {
				return unsupported(fPNG, "unknown critical chunk %q", kind)
			}
			if err := c.src.copyN(nil, length+4, nil); err != nil {
				return err
			}
			continue
		}
		if err := c.pngKeep(head, length); err != nil {
			return err
		}
		if kind == "IEND" {
			return nil
		}
	}
}

// pngKeep copies a chunk whose 8-byte head has been read, checking its CRC.
func (c *cleaner) pngKeep(head [8]byte, length int64) error {
	if err := c.emit(head[:]); err != nil {
		return err
	}
	crc := crc32.ChecksumIEEE(head[4:8])
	pixels := string(head[4:8]) == "IDAT"
	if err := c.copyN(length, func(b []byte) {
		crc = crc32.Update(crc, crc32.IEEETable, b)
		if pixels {
			c.feedPixels(b)
		}
	}); err != nil {
		return err
	}
	if err := c.pixelsFailed(); err != nil {
		return err
	}
	sum, err := c.src.next(4)
	if err != nil {
		return err
	}
	if binary.BigEndian.Uint32(sum) != crc {
		return unsupported(fPNG, "chunk %q has a wrong CRC", head[4:8])
	}
	return c.emit(sum)
}

// pngHeader reads IHDR, answers the pixel limit from it before reading its CRC, and has
// the standard library decode the header to confirm it (for a palette image with a
// stand-in one-colour PLTE, since the standard library wants the palette for the colour
// model). It returns the 13 bytes of IHDR.
func (c *cleaner) pngHeader(head [8]byte, length int64) ([]byte, error) {
	if length != 13 {
		return nil, unsupported(fPNG, "IHDR of %d bytes", length)
	}
	p, err := c.src.next(13)
	if err != nil {
		return nil, err
	}
	ihdr := bytes.Clone(p)
	width, height := binary.BigEndian.Uint32(ihdr[0:4]), binary.BigEndian.Uint32(ihdr[4:8])
	if width > 1<<31-1 || height > 1<<31-1 {
		return nil, unsupported(fPNG, "%d×%d is not a size", width, height)
	}
	if err := c.checkPixels(fPNG, int(width), int(height)); err != nil {
		return nil, err
	}
	sum, err := c.src.next(4)
	if err != nil {
		return nil, err
	}
	chunk := make([]byte, 0, 25+15)
	chunk = append(append(append(chunk, head[:]...), ihdr...), sum...)
	hdr := append([]byte(pngSignature), chunk...)
	if ihdr[9] == 3 {
		plte := []byte{0, 0, 0, 3, 'P', 'L', 'T', 'E', 0, 0, 0}
		hdr = binary.BigEndian.AppendUint32(append(hdr, plte...), crc32.ChecksumIEEE(plte[4:]))
		hdr = append(hdr, 0, 0, 0, 0, 'I', 'D', 'A', 'T')
		hdr = binary.BigEndian.AppendUint32(hdr, crc32.ChecksumIEEE([]byte("IDAT")))
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(hdr))
	if err != nil {
		return nil, unsupported(fPNG, "header does not decode: %v", err)
	}
	if cfg.Width != int(width) || cfg.Height != int(height) {
		return nil, unsupported(fPNG, "header decodes to %d×%d, not %d×%d", cfg.Width, cfg.Height, width, height)
	}
	return ihdr, c.emit(chunk)
}

// pngEXIF reads the first eXIf chunk (its first 64 KiB: IFD0 comes first) for the
// orientation and writes back a minimal one when it is not 1.
func (c *cleaner) pngEXIF(head [8]byte, length int64) error {
	k := min(length, maxEXIFRead)
	p, err := c.src.next(int(k))
	if err != nil {
		return err
	}
	orientation, order := exifOrientation(stripExifHeader(p))
	if err := c.src.copyN(nil, length-k+4, nil); err != nil {
		return err
	}
	if orientation == 1 {
		return nil
	}
	c.info.Orientation = orientation
	tiff := minimalTIFF(order, orientation)
	chunk := binary.BigEndian.AppendUint32(nil, minimalTIFFSize)
	chunk = append(append(chunk, "eXIf"...), tiff...)
	return c.emit(binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:])))
}
