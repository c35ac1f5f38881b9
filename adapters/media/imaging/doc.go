// Package imaging implements media.Imaging in pure Go: it recognises PNG, JPEG, GIF and
// WebP from their bytes, checks their headers with the standard library and
// golang.org/x/image before any pixel data is read, strips metadata by dropping the
// segments or chunks that hold it (the compressed pixel data is copied byte for byte), and
// makes thumbnails.
//
// Cleaning streams: each call holds a 64 KiB input buffer (it holds any JPEG segment, so
// the EXIF block read for its orientation needs nothing more) and a 32 KiB output buffer,
// both pooled, a few header bytes, and for an extended WebP file a spool bounded in memory
// (see webp.go).
// Until the dimensions have been checked against the pixel limit it reads only the bytes it
// needs, so a decompression bomb is refused having read no more than its header.
//
// The policy is a whitelist: only the containers a decoder needs to show the image the
// right way (pixel data, palettes, colour profiles and transforms, animation control) are
// kept; everything else, known metadata or not, is dropped. An EXIF orientation other than
// 1 is written back as a minimal EXIF block holding that single tag, in the byte order of
// the original, where the first EXIF block was (for WebP, after the image data).
package imaging
