package imaging

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/acme/postsvc/ports/media"
)

// An independent walker over a cleaned file's structure: every container it holds must be
// one the whitelist keeps, any EXIF must be the minimal orientation block, and nothing may
// follow the end of the image. It returns the orientation the file carries.
func checkStructure(format string, b []byte) (int, error) {
	switch format {
	case media.FormatJPEG:
		return checkJPEG(b)
	case media.FormatPNG:
		return checkPNG(b)
	case media.FormatGIF:
		return 1, checkGIF(b)
	case media.FormatWebP:
		return checkWebP(b)
	}
	return 0, fmt.Errorf("format %q", format)
}

// minimalEXIF reports the orientation of a TIFF structure that is exactly the minimal one.
func minimalEXIF(tiff []byte) (int, error) {
	o, order := exifOrientation(tiff)
	if order == nil || o == 1 || !bytes.Equal(tiff, minimalTIFF(order, o)) {
		return 0, fmt.Errorf("EXIF block is not the minimal orientation block: %q", tiff)
	}
	return o, nil
}

func checkJPEG(b []byte) (int, error) {
	if len(b) < 2 || b[0] != 0xff || b[1] != 0xd8 {
		return 0, fmt.Errorf("no SOI")
	}
	orientation := 1
	i := 2
	for {
		if i+2 > len(b) || b[i] != 0xff {
			return 0, fmt.Errorf("no marker at %d", i)
		}
		m := b[i+1]
		i += 2
		if m == 0xd9 {
			if i != len(b) {
				return 0, fmt.Errorf("%d bytes after EOI", len(b)-i)
			}
			return orientation, nil
		}
		if i+2 > len(b) {
			return 0, fmt.Errorf("segment 0x%02x cut", m)
		}
		n := int(binary.BigEndian.Uint16(b[i:]))
		if n < 2 || i+n > len(b) {
			return 0, fmt.Errorf("segment 0x%02x length %d", m, n)
		}
		p := b[i+2 : i+n]
		i += n
		switch {
		case m == 0xe1:
			if !bytes.HasPrefix(p, []byte(exifHeader)) || orientation != 1 {
				return 0, fmt.Errorf("APP1 that is not one minimal EXIF block")
			}
			o, err := minimalEXIF(p[len(exifHeader):])
			if err != nil {
				return 0, err
			}
			orientation = o
		case m == 0xe0 && bytes.HasPrefix(p, []byte("JFIF\x00")),
			m == 0xe2 && bytes.HasPrefix(p, []byte("ICC_PROFILE\x00")),
			m == 0xee && bytes.HasPrefix(p, []byte("Adobe")),
			m == 0xc0, m == 0xc1, m == 0xc2, m == 0xc4, m == 0xdb, m == 0xdd:
		case m == 0xda:
			for {
				j := bytes.IndexByte(b[i:], 0xff)
				if j < 0 || i+j+1 >= len(b) {
					return 0, fmt.Errorf("scan not ended")
				}
				i += j
				if c := b[i+1]; c == 0 || c >= 0xd0 && c <= 0xd7 {
					i += 2
					continue
				}
				break
			}
		default:
			return 0, fmt.Errorf("segment 0x%02x kept", m)
		}
	}
}

func checkPNG(b []byte) (int, error) {
	if !bytes.HasPrefix(b, []byte(pngSignature)) {
		return 0, fmt.Errorf("no signature")
	}
	orientation := 1
	for i := 8; ; {
		if i+12 > len(b) {
			return 0, fmt.Errorf("chunk cut at %d", i)
		}
		n := int(binary.BigEndian.Uint32(b[i:]))
		kind := string(b[i+4 : i+8])
		if n > len(b)-i-12 {
			return 0, fmt.Errorf("chunk %q cut", kind)
		}
		data := b[i+8 : i+8+n]
		i += 12 + n
		switch {
		case kind == "eXIf":
			if orientation != 1 {
				return 0, fmt.Errorf("two eXIf")
			}
			o, err := minimalEXIF(data)
			if err != nil {
				return 0, err
			}
			orientation = o
		case kind == "IEND":
			if i != len(b) {
				return 0, fmt.Errorf("%d bytes after IEND", len(b)-i)
			}
			return orientation, nil
		case !pngKept[kind]:
			return 0, fmt.Errorf("chunk %q kept", kind)
		}
	}
}

func checkGIF(b []byte) error {
	if len(b) < 13 {
		return fmt.Errorf("short")
	}
	i := 13
	if b[10]&0x80 != 0 {
		i += 3 << (b[10]&7 + 1)
	}
	blocks := func() error {
		for {
			if i >= len(b) {
				return fmt.Errorf("sub-blocks cut")
			}
			n := int(b[i])
			i += 1 + n
			if n == 0 {
				return nil
			}
		}
	}
	for {
		if i >= len(b) {
			return fmt.Errorf("no trailer")
		}
		switch b[i] {
		case 0x3b:
			if i+1 != len(b) {
				return fmt.Errorf("%d bytes after the trailer", len(b)-i-1)
			}
			return nil
		case 0x2c:
			if i+10 > len(b) {
				return fmt.Errorf("descriptor cut")
			}
			packed := b[i+9]
			i += 10
			if packed&0x80 != 0 {
				i += 3 << (packed&7 + 1)
			}
			i++ // LZW minimum code size
		case 0x21:
			if i+2 > len(b) {
				return fmt.Errorf("extension cut")
			}
			label := b[i+1]
			i += 2
			switch label {
			case 0xf9, 0x01:
			case 0xff:
				if i+12 > len(b) || b[i] != 11 || !gifKeptApps[string(b[i+1:i+12])] {
					return fmt.Errorf("application extension kept")
				}
			default:
				return fmt.Errorf("extension 0x%02x kept", label)
			}
		default:
			return fmt.Errorf("block 0x%02x", b[i])
		}
		if err := blocks(); err != nil {
			return err
		}
	}
}

func checkWebP(b []byte) (int, error) {
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WEBP" {
		return 0, fmt.Errorf("no RIFF WEBP header")
	}
	if int(binary.LittleEndian.Uint32(b[4:])) != len(b)-8 {
		return 0, fmt.Errorf("RIFF size %d for %d bytes", binary.LittleEndian.Uint32(b[4:]), len(b)-8)
	}
	orientation := 1
	var flags byte
	for i := 12; i < len(b); {
		if i+8 > len(b) {
			return 0, fmt.Errorf("chunk header cut")
		}
		kind := string(b[i : i+4])
		n := int(binary.LittleEndian.Uint32(b[i+4:]))
		if n > len(b)-i-8-n&1 {
			return 0, fmt.Errorf("chunk %q cut", kind)
		}
		data := b[i+8 : i+8+n]
		i += 8 + n + n&1
		switch kind {
		case "VP8X":
			flags = data[0]
		case "EXIF":
			if orientation != 1 {
				return 0, fmt.Errorf("two EXIF")
			}
			o, err := minimalEXIF(data)
			if err != nil {
				return 0, err
			}
			orientation = o
		case "VP8 ", "VP8L", "ALPH", "ICCP":
		default:
			return 0, fmt.Errorf("chunk %q kept", kind)
		}
	}
	if flags&vp8xXMP != 0 || (flags&vp8xEXIF != 0) != (orientation != 1) {
		return 0, fmt.Errorf("VP8X flags 0x%02x with orientation %d", flags, orientation)
	}
	return orientation, nil
}
