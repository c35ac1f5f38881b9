package imaging

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"golang.org/x/sync/semaphore"

	"github.com/acme/postsvc/ports/media"
)

// DefaultMaxPixels is the pixel limit used when CleanLimits.MaxPixels is not positive, and
// the limit Thumbnail refuses to decode beyond (50 megapixels, the contract's).
const DefaultMaxPixels = 50_000_000

// FramePixelsFactor bounds the pixels of all the frames of an animated GIF together, as a
// multiple of the pixel limit: checking a frame decodes its LZW data, and a frame of 7000 ×
// 7000 pixels of one colour compresses to 33 KB, so a 20 MiB GIF of 600 such frames (29
// gigapixels) held a core for over a minute (a probe of two at once ended in 408s after 61 s
// of CPU each). Four times the limit (200 megapixels at the contract's 50) is still a
// 480 × 270 animation of 1,500 frames, and about 0.7 s of decoding.
const FramePixelsFactor = 4

// MaxJPEGScans bounds the scans of a JPEG. A decoder walks every block of the image once per
// scan, and scans cost a few bytes each: an outside probe's 245 KB progressive JPEG of 7000 ×
// 7000 pixels in 2,000 scans took 40 s of a thumbnail slot to decode (and 20,000 scans would
// fit in 2 MB), where the image's pixels alone take about a second. Encoders write 1 to 4
// scans (baseline) or about 10 (progressive: libjpeg's script has 10 for colour, 6 for grey;
// mozjpeg's and Photoshop's are of that order), so 100 refuses no photo while bounding a
// decode to about 100 passes over at most the pixel limit.
const MaxJPEGScans = 100

// Config tunes the adapter; its zero value is ready to use.
type Config struct {
	// TempDir is where a WebP file larger than the in-memory spool is spooled while it is
	// cleaned (see webp.go); empty means os.TempDir().
	TempDir string
	// ThumbnailMaxPixels bounds the images Thumbnail decodes; 0 means DefaultMaxPixels.
	ThumbnailMaxPixels int64
	// DecodeMemory bounds the memory of the whole images decoded at once (thumbnails, and
	// the check of WebP uploads), estimated from their size before each decode; 0 means
	// DefaultDecodeMemory. An image larger than the whole budget is decoded alone.
	DecodeMemory int64
}

// DefaultDecodeMemory is the decode budget when Config.DecodeMemory is not positive: two
// 8-bit 50-megapixel images need 400 MB, a 16-bit one alone as much, so without it two
// thumbnail slots could take 800 MB (outside probe: 1.6 GB of RSS) in pods limited to 768 MiB.
const DefaultDecodeMemory = 256 << 20

// Imaging implements media.Imaging. It is safe for concurrent use; what it holds across
// calls is the decode budget.
type Imaging struct {
	cfg     Config
	decodes *semaphore.Weighted
}

var _ media.Imaging = (*Imaging)(nil)

// New returns the adapter.
func New(cfg Config) *Imaging {
	if cfg.ThumbnailMaxPixels <= 0 {
		cfg.ThumbnailMaxPixels = DefaultMaxPixels
	}
	if cfg.DecodeMemory <= 0 {
		cfg.DecodeMemory = DefaultDecodeMemory
	}
	return &Imaging{cfg: cfg, decodes: semaphore.NewWeighted(cfg.DecodeMemory)}
}

// decodeBytes is an upper bound of what decoding a w×h image of format takes: 8 bytes a pixel
// for PNG (16-bit RGBA), 4 for the others (RGBA, CMYK JPEG).
func decodeBytes(format string, w, h int) int64 {
	perPixel := int64(4)
	if format == media.FormatPNG {
		perPixel = 8
	}
	return int64(w) * int64(h) * perPixel
}

// acquireDecode waits for n bytes of the decode budget (at most all of it) and returns the
// function that gives them back.
func (m *Imaging) acquireDecode(ctx context.Context, n int64) (func(), error) {
	n = min(n, m.cfg.DecodeMemory)
	if err := m.decodes.Acquire(ctx, n); err != nil {
		return nil, err
	}
	return func() { m.decodes.Release(n) }, nil
}

// writerPool recycles the output buffers, as bufPool does the input ones.
var writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32<<10) }}

// cleaner is the state of one Clean call.
type cleaner struct {
	src *source
	out *bufio.Writer
	// dst is where emit and copyN write: out, or a WebP spool.
	dst       io.Writer
	maxPixels int64
	tempDir   string
	// acquire takes memory of the decode budget (Imaging.acquireDecode).
	acquire func(ctx context.Context, n int64) (func(), error)
	// discard: the output is not wanted (Thumbnail reads the orientation this way), so
	// WebP need not be spooled.
	discard bool
	info    media.ImageInfo
	// where names the structure being read, for the error when the file ends inside it.
	where string
	// verify: the pixel data is checked as it is copied (see pixels.go); pixels is the
	// check running.
	verify bool
	pixels *pixelCheck
	// framePixels counts the pixels of the frames read so far (GIF), against
	// FramePixelsFactor × maxPixels when verify is set.
	framePixels int64
	// scans counts a JPEG's scans; overScans: more than MaxJPEGScans, in a file read
	// without verify (an upload with verify is refused at the first one over).
	scans     int
	overScans bool
}

// startPixels starts a check of the pixel data about to be copied.
func (c *cleaner) startPixels(check func(io.Reader) error) {
	c.pixels = newPixelCheck(check)
}

// endPixels ends the running check and returns its result.
func (c *cleaner) endPixels() error {
	if c.pixels == nil {
		return nil
	}
	err := c.pixels.close()
	c.pixels = nil
	return err
}

// feedPixels is the copy callback that feeds the running check.
func (c *cleaner) feedPixels(b []byte) {
	if c.pixels != nil {
		c.pixels.feed(b)
	}
}

// pixelsFailed is the error of a check that ended early, which stops the copy.
func (c *cleaner) pixelsFailed() error {
	if c.pixels == nil {
		return nil
	}
	return c.pixels.failed()
}

// Clean implements media.Imaging. On error w may have received part of an output, which
// the caller discards.
func (m *Imaging) Clean(ctx context.Context, r io.Reader, w io.Writer, limits media.CleanLimits) (media.ImageInfo, error) {
	info, _, err := m.clean(ctx, r, w, limits.MaxPixels, false)
	return info, err
}

// clean cleans r into w. costly reports a file read without verify (discard) whose pixels
// would take more decoding than an upload is allowed (more than MaxJPEGScans scans): one
// stored before that limit, which Thumbnail does not decode.
func (m *Imaging) clean(ctx context.Context, r io.Reader, w io.Writer, maxPixels int64, discard bool) (info media.ImageInfo, costly bool, err error) {
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	out, _ := writerPool.Get().(*bufio.Writer)
	out.Reset(w)
	c := &cleaner{
		src:       newSource(ctx, r),
		out:       out,
		maxPixels: maxPixels,
		tempDir:   m.cfg.TempDir,
		acquire:   m.acquireDecode,
		discard:   discard,
		verify:    !discard, // Thumbnail decodes the whole image anyway
		info:      media.ImageInfo{Orientation: 1},
		where:     "the header",
	}
	c.dst = c.out
	defer func() {
		if c.pixels != nil {
			c.pixels.abort()
		}
		c.src.release()
		out.Reset(nil)
		writerPool.Put(out)
	}()
	head, err := c.src.peek(12)
	if err != nil && !errors.Is(err, errTruncated) {
		return media.ImageInfo{}, false, err
	}
	if err != nil {
		// Shorter than 12 bytes: no image of any of the formats is that small.
		head = c.src.buf[c.src.pos:c.src.end]
	}
	format := detect(head)
	switch format {
	case media.FormatPNG:
		err = c.png()
	case media.FormatJPEG:
		err = c.jpeg()
	case media.FormatGIF:
		err = c.gif()
	case media.FormatWebP:
		err = c.webp()
	default:
		return media.ImageInfo{}, false, fmt.Errorf("%w: not PNG, JPEG, GIF or WebP", media.ErrUnsupportedFormat)
	}
	if err == nil {
		err = c.out.Flush()
	}
	if err != nil {
		if errors.Is(err, errTruncated) {
			err = fmt.Errorf("%w: %s: %s runs past the end of the file (%d bytes)", media.ErrUnsupportedFormat, format, c.where, c.src.off+int64(c.src.buffered()))
		}
		return media.ImageInfo{}, false, err
	}
	c.info.Format = format
	c.info.ContentType = "image/" + format
	return c.info, c.overScans, nil
}

// unsupported wraps media.ErrUnsupportedFormat with what is wrong.
func unsupported(format, why string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", media.ErrUnsupportedFormat, format, fmt.Sprintf(why, args...))
}

// checkPixels answers the pixel limit from the header and then lets the source read
// ahead: everything after this point is bounded per buffer, not by the file.
func (c *cleaner) checkPixels(format string, width, height int) error {
	if width <= 0 || height <= 0 {
		return unsupported(format, "%d×%d is not a size", width, height)
	}
	if int64(width)*int64(height) > c.maxPixels {
		return fmt.Errorf("%w: %s: %d×%d is over %d pixels", media.ErrTooManyPixels, format, width, height, c.maxPixels)
	}
	c.info.Width, c.info.Height = width, height
	c.src.ahead = true
	return nil
}

// countFrame adds a w×h frame to the file's frames and refuses the file once they hold more
// than FramePixelsFactor × maxPixels together. Only an upload is refused so (verify):
// Thumbnail decodes the first frame alone, and images stored before this limit keep theirs.
func (c *cleaner) countFrame(format string, w, h int) error {
	c.framePixels += int64(w) * int64(h)
	if limit := FramePixelsFactor * c.maxPixels; c.verify && c.framePixels > limit {
		return fmt.Errorf("%w: %s: its frames hold over %d pixels together", media.ErrTooManyPixels, format, limit)
	}
	return nil
}

// detect recognises the format from the first bytes, as the standard library's sniffing
// does (image.RegisterFormat's patterns).
func detect(head []byte) string {
	switch {
	case len(head) >= 8 && string(head[:8]) == pngSignature:
		return media.FormatPNG
	case len(head) >= 2 && head[0] == 0xff && head[1] == 0xd8:
		return media.FormatJPEG
	case len(head) >= 6 && (string(head[:6]) == "GIF87a" || string(head[:6]) == "GIF89a"):
		return media.FormatGIF
	case len(head) >= 12 && string(head[:4]) == "RIFF" && string(head[8:12]) == "WEBP":
		return media.FormatWebP
	}
	return ""
}

// emit writes header bytes to the output.
func (c *cleaner) emit(parts ...[]byte) error {
	for _, p := range parts {
		if _, err := c.dst.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// copyN copies n bytes of the input to the output.
func (c *cleaner) copyN(n int64, sum func([]byte)) error {
	return c.src.copyN(c.dst, n, sum)
}
