package imaging

import (
	"bytes"
	"encoding/binary"
)

const (
	exifHeader     = "Exif\x00\x00"
	tagOrientation = 0x0112
	typeShort      = 3
	// minimalTIFFSize is the length of minimalTIFF's structure.
	minimalTIFFSize = 26
	// maxEXIFRead bounds how much of an EXIF block is read to find the orientation: a JPEG
	// segment cannot be larger, and IFD0 comes first in every writer's layout.
	maxEXIFRead = 64 << 10
)

// exifOrientation reads the Orientation tag of IFD0 from a TIFF structure (the payload of
// an EXIF block after its "Exif\0\0" header). It returns 1 when there is none or it is not
// 1 to 8, and the byte order, nil when the structure is not TIFF.
func exifOrientation(tiff []byte) (int, binary.ByteOrder) {
	if len(tiff) < 8 {
		return 1, nil
	}
	var order binary.ByteOrder
	switch string(tiff[:4]) {
	case "II*\x00":
		order = binary.LittleEndian
	case "MM\x00*":
		order = binary.BigEndian
	default:
		return 1, nil
	}
	ifd := int64(order.Uint32(tiff[4:8]))
	if ifd < 8 || ifd+2 > int64(len(tiff)) {
		return 1, order
	}
	count := int64(order.Uint16(tiff[ifd:]))
	for i := range count {
		e := ifd + 2 + 12*i
		if e+12 > int64(len(tiff)) {
			break
		}
		entry := tiff[e : e+12]
		if order.Uint16(entry[0:2]) != tagOrientation {
			continue
		}
		if order.Uint16(entry[2:4]) != typeShort || order.Uint32(entry[4:8]) != 1 {
			return 1, order
		}
		if v := int(order.Uint16(entry[8:10])); v >= 1 && v <= 8 {
			return v, order
		}
		return 1, order
	}
	return 1, order
}

// minimalTIFF is a TIFF structure holding IFD0 with the single Orientation entry and no
// next IFD (minimalTIFFSize bytes).
func minimalTIFF(order binary.ByteOrder, orientation int) []byte {
	var o binary.AppendByteOrder = binary.BigEndian
	b := make([]byte, 0, minimalTIFFSize)
	if order == binary.LittleEndian {
		o = binary.LittleEndian
		b = append(b, "II*\x00"...)
	} else {
		b = append(b, "MM\x00*"...)
	}
	b = o.AppendUint32(b, 8)
	b = o.AppendUint16(b, 1)
	b = o.AppendUint16(b, tagOrientation)
	b = o.AppendUint16(b, typeShort)
	b = o.AppendUint32(b, 1)
	b = o.AppendUint16(b, uint16(orientation)) //nolint:gosec // 1 to 8
	b = o.AppendUint16(b, 0)
	return o.AppendUint32(b, 0)
}

// stripExifHeader removes the "Exif\0\0" header some writers put in front of the TIFF
// structure (WebP and PNG blocks should not have it; JPEG's must).
func stripExifHeader(b []byte) []byte {
	return bytes.TrimPrefix(b, []byte(exifHeader))
}
