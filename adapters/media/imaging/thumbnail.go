package imaging

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"io"

	// Decoders for image.Decode.
	_ "image/gif"

	xdraw "golang.org/x/image/draw"
	_ "golang.org/x/image/webp"

	"github.com/acme/postsvc/ports/media"
)

// maxThumbnailInput bounds what Thumbnail reads: a cleaned file is at most the upload
// limit (20 MiB) plus a few bytes.
const maxThumbnailInput = 64 << 20

// errTooCostly stands for the decode of a stored file with more scans than MaxJPEGScans.
var errTooCostly = errors.New("imaging: more decoding than an upload is allowed")

// thumbnailQuality is the JPEG quality of thumbnails of JPEG sources.
const thumbnailQuality = 80

// Thumbnail implements media.Imaging. It reads the (cleaned) file into memory, which is
// small beside the decoded image: a WebP file's orientation is in its last chunk, so the
// file must be walked before decoding anyway. It walks it with the cleaner, which answers
// the pixel limit (Config.ThumbnailMaxPixels) from the header and finds the orientation,
// before decoding.
//
// Scaling uses Catmull-Rom: thumbnails are made once and cached, and downscaling a photo
// 10 to 30 times with a bilinear kernel that looks at four source pixels aliases badly
// (moiré, jagged edges), while Catmull-Rom widens its kernel with the ratio and stays
// sharp. Orientation is applied to the small scaled image, not the source.
//
// A file whose header Clean accepted but whose pixel data does not decode (see
// media.Imaging) gets a placeholder: a flat grey image of the size and type its thumbnail
// would have had.
func (m *Imaging) Thumbnail(ctx context.Context, r io.Reader, w io.Writer, maxSide int) (media.Thumbnail, error) {
	if maxSide <= 0 {
		return media.Thumbnail{}, fmt.Errorf("imaging: thumbnail side %d", maxSide)
	}
	data, err := io.ReadAll(io.LimitReader(r, maxThumbnailInput+1))
	if err != nil {
		return media.Thumbnail{}, err
	}
	if len(data) > maxThumbnailInput {
		return media.Thumbnail{}, fmt.Errorf("%w: over %d bytes", media.ErrUnsupportedFormat, maxThumbnailInput)
	}
	info, costly, err := m.clean(ctx, bytes.NewReader(data), io.Discard, m.cfg.ThumbnailMaxPixels, true)
	if err != nil {
		return media.Thumbnail{}, err
	}
	var src image.Image
	if costly {
		// Stored before uploads were held to MaxJPEGScans: not decoded, like pixels that
		// do not decode.
		err = errTooCostly
	} else {
		release, aerr := m.acquireDecode(ctx, decodeBytes(info.Format, info.Width, info.Height))
		if aerr != nil {
			return media.Thumbnail{}, aerr
		}
		defer release()
		src, _, err = image.Decode(bytes.NewReader(data))
		if cerr := ctx.Err(); cerr != nil {
			return media.Thumbnail{}, cerr
		}
	}
	if err != nil {
		tw, th := thumbnailSize(info.Width, info.Height, maxSide, info.Orientation)
		if swaps(info.Orientation) {
			tw, th = th, tw // as displayed
		}
		return encodeThumbnail(w, placeholder(tw, th), info.Format, true)
	}
	thumb := scale(src, maxSide, info.Orientation)
	if err := ctx.Err(); err != nil {
		return media.Thumbnail{}, err
	}
	return encodeThumbnail(w, thumb, info.Format, false)
}

// encodeThumbnail writes thumb to w: JPEG for JPEG sources, PNG (which keeps transparency)
// for the others.
func encodeThumbnail(w io.Writer, thumb image.Image, format string, placeholder bool) (media.Thumbnail, error) {
	if format == media.FormatJPEG {
		return media.Thumbnail{ContentType: "image/jpeg", Placeholder: placeholder},
			jpeg.Encode(w, thumb, &jpeg.Options{Quality: thumbnailQuality})
	}
	return media.Thumbnail{ContentType: "image/png", Placeholder: placeholder},
		(&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(w, thumb)
}

// placeholderGrey is the colour of a placeholder thumbnail: a light neutral grey, what a
// page shows while an image loads.
var placeholderGrey = color.Gray{Y: 0xd0}

// placeholder is a w×h image of placeholderGrey.
func placeholder(w, h int) image.Image {
	dst := image.NewGray(image.Rect(0, 0, w, h))
	draw.Draw(dst, dst.Bounds(), image.NewUniform(placeholderGrey), image.Point{}, draw.Src)
	return dst
}

// thumbnailSize is the size, before orientation is applied, of the thumbnail of a w×h image
// stored with orientation: it fits maxSide×maxSide once oriented.
func thumbnailSize(w, h, maxSide, orientation int) (tw, th int) {
	if swaps(orientation) {
		th, tw = fit(h, w, maxSide)
		return tw, th
	}
	return fit(w, h, maxSide)
}

// swaps reports whether an EXIF orientation turns the image a quarter.
func swaps(orientation int) bool { return orientation >= 5 && orientation <= 8 }

// fit returns the size of a w×h image scaled to fit maxSide×maxSide, never enlarged.
func fit(w, h, maxSide int) (int, int) {
	if w <= maxSide && h <= maxSide {
		return w, h
	}
	if w >= h {
		return maxSide, max(1, (h*maxSide+w/2)/w)
	}
	return max(1, (w*maxSide+h/2)/h), maxSide
}

// scale scales src to fit maxSide×maxSide once oriented, then orients it. A source at least
// twice the thumbnail's size along an axis is first shrunk along it by the largest whole
// factor that keeps it so (shrink, a box filter), each axis by its own factor, and
// Catmull-Rom reduces the rest, at most 4× per side: run over the whole source, Catmull-Rom's
// kernel widens with the ratio and took most of a thumbnail's time (about 330 ms of a
// 12-megapixel photo's). libvips makes thumbnails the same way (shrink, then reduce).
//
// The factors are per axis because a source can be narrow: an outside probe's PNG of 1 ×
// 50,000,000 pixels (97 KB, within the pixel limit) has a thumbnail 1 pixel wide, so one
// factor for both axes (the smaller) was 1, nothing was shrunk, and Catmull-Rom's weights
// for 50 million source rows took 3 to 5 GB.
func scale(src image.Image, maxSide, orientation int) image.Image {
	b := src.Bounds()
	sw, sh := b.Dx(), b.Dy()
	tw, th := thumbnailSize(sw, sh, maxSide, orientation)
	if kx, ky := max(1, sw/(2*tw)), max(1, sh/(2*th)); kx >= 2 || ky >= 2 {
		src = shrink(src, kx, ky)
		b = src.Bounds()
		sw, sh = b.Dx(), b.Dy()
	}
	dst := image.NewRGBA(image.Rect(0, 0, tw, th))
	if tw == sw && th == sh {
		draw.Draw(dst, dst.Bounds(), src, b.Min, draw.Src)
	} else {
		xdraw.CatmullRom.Scale(dst, dst.Bounds(), src, b, xdraw.Src, nil)
	}
	return orient(dst, orientation)
}

// shrinkTilePixels bounds the source pixels shrink converts at once (4 bytes each); a
// variable so that tests can make tiles small.
var shrinkTilePixels = 1 << 18

// shrink reduces src by the whole factors kx across and ky down with a box filter: each pixel
// of the result is the mean of a kx×ky block of the source (of what is left of one at the
// right and bottom edges), in premultiplied RGBA. It converts a tile of whole blocks at a time
// (draw.Draw, which has fast paths for what the decoders return): ky rows by as many columns
// as keep the tile near shrinkTilePixels, so besides the result it holds one tile of the
// source whatever the source's type and shape (a row of a 50,000,000 × 1 image would be
// 200 MB). A block is small: scale asks for kx×ky ≤ the source's pixels / (4 × the
// thumbnail's), a few hundred KB at the pixel limit.
func shrink(src image.Image, kx, ky int) *image.RGBA {
	b := src.Bounds()
	sw, sh := b.Dx(), b.Dy()
	ow, oh := (sw+kx-1)/kx, (sh+ky-1)/ky
	dst := image.NewRGBA(image.Rect(0, 0, ow, oh))
	blocksPerTile := max(1, shrinkTilePixels/(kx*ky))
	tileW := min(sw, blocksPerTile*kx)
	tile := image.NewRGBA(image.Rect(0, 0, tileW, ky))
	sums := make([]int, 4*ow)
	for oy := range oh {
		y0 := b.Min.Y + oy*ky
		rows := min(ky, b.Max.Y-y0)
		clear(sums)
		for x0 := 0; x0 < sw; x0 += tileW {
			cols := min(tileW, sw-x0)
			draw.Draw(tile, image.Rect(0, 0, cols, rows), src, image.Pt(b.Min.X+x0, y0), draw.Src)
			first := x0 / kx // tiles hold whole blocks: x0 is a multiple of kx
			for r := range rows {
				row := tile.Pix[r*tile.Stride : r*tile.Stride+4*cols]
				for ox := first; ox*kx < x0+cols; ox++ {
					px := row[4*(ox*kx-x0) : 4*(min(ox*kx+kx, sw)-x0)]
					s := sums[4*ox : 4*ox+4 : 4*ox+4]
					for i := 0; i+3 < len(px); i += 4 {
						s[0] += int(px[i])
						s[1] += int(px[i+1])
						s[2] += int(px[i+2])
						s[3] += int(px[i+3])
					}
				}
			}
		}
		out := dst.Pix[oy*dst.Stride : oy*dst.Stride+4*ow]
		for ox := range ow {
			n := (min(ox*kx+kx, sw) - ox*kx) * rows
			for c := range 4 {
				out[4*ox+c] = uint8((sums[4*ox+c] + n/2) / n) //nolint:gosec // G115: the mean of n bytes is a byte
			}
		}
	}
	return dst
}

// orient returns m turned the way EXIF orientation o says it is displayed.
func orient(m *image.RGBA, o int) *image.RGBA {
	if o <= 1 || o > 8 {
		return m
	}
	w, h := m.Bounds().Dx(), m.Bounds().Dy()
	dw, dh := w, h
	if swaps(o) {
		dw, dh = h, w
	}
	out := image.NewRGBA(image.Rect(0, 0, dw, dh))
	for y := range dh {
		for x := range dw {
			var sx, sy int
			switch o {
			case 2:
				sx, sy = w-1-x, y
			case 3:
				sx, sy = w-1-x, h-1-y
			case 4:
				sx, sy = x, h-1-y
			case 5:
				sx, sy = y, x
			case 6:
				sx, sy = y, h-1-x
			case 7:
				sx, sy = w-1-y, h-1-x
			case 8:
				sx, sy = w-1-y, x
			}
			si, di := m.PixOffset(sx, sy), out.PixOffset(x, y)
			copy(out.Pix[di:di+4], m.Pix[si:si+4])
		}
	}
	return out
}
