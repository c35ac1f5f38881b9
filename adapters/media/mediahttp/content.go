package mediahttp

import (
	"cmp"
	"io"
	"math"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/domain/media/image"
	"github.com/acme/postsvc/ports"
)

// setCaching marks what a shared cache may keep. A private image is one user's: no cache
// keeps it. A public one may be kept but is revalidated on every use (no-cache), so making it
// private, or deleting it, takes effect on the next request even through a cache.
func setCaching(c *gin.Context, img *image.Image) {
	if img.IsPublic() {
		c.Header("Cache-Control", "public, no-cache")
		return
	}
	c.Header("Cache-Control", "private, no-store")
}

func (m *Module) content(c *gin.Context) {
	img, obj, err := m.svc.Content(c.Request.Context(), caller(c), c.Param("id"))
	if err == nil && (img == nil || obj == nil) {
		err = httpapi.ErrNoResult
	}
	if err != nil {
		httpapi.Fail(c, err)
		return
	}
	defer func() { _ = obj.Close() }()
	serve(c, img, obj, img.Content().Format.ContentType(), `"`+img.SHA256Hex()+`"`, img.Filename())
}

func (m *Module) thumbnail(c *gin.Context) {
	img, obj, contentType, err := m.svc.Thumbnail(c.Request.Context(), caller(c), c.Param("id"))
	if err == nil && (img == nil || obj == nil) {
		err = httpapi.ErrNoResult
	}
	if err != nil {
		httpapi.Fail(c, err)
		return
	}
	defer func() { _ = obj.Close() }()
	// The thumbnail is made from the image's bytes by fixed code: the image's hash names it.
	serve(c, img, obj, contentType, `"`+img.SHA256Hex()+`-thumb"`, "thumbnail-"+img.Filename())
}

// serve answers with a stored object through http.ServeContent, which handles Range,
// If-None-Match, If-Modified-Since and HEAD. The type is the stored one (set first, so
// ServeContent never sniffs), and the file name is sent as an RFC 6266 parameter that
// mime.FormatMediaType quotes or encodes, so no name can break the header.
//
// The Range header is judged here first, by RFC 9110 section 14: one that must or may be
// ignored (on another method than GET, in another unit than bytes, or not a valid byte range
// set) is removed, so the whole content is served (ServeContent answered them all 416 in
// plain text); a valid one that selects bytes is handed on in a form ServeContent reads
// alike (the unit in lower case, numbers past the content cut to it, ranges that select
// nothing left out); a valid one that selects nothing is 416 as a problem document with
// Content-Range: bytes */<length>.
func serve(c *gin.Context, img *image.Image, obj ports.Object, contentType, etag, filename string) {
	h := c.Writer.Header()
	setCaching(c, img)
	h.Set("Content-Type", contentType)
	h.Set("ETag", etag)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Disposition", contentDisposition(filename))
	size := obj.Info().Size
	refuseRange := func() {
		h.Del("Content-Disposition")
		h.Del("Content-Type")
		setCaching(c, img)
		httpapi.RangeNotSatisfiable(c, size)
	}
	r := c.Request
	header, kind := byteRanges(r, size)
	switch {
	case kind == rangeNone:
	case kind == rangeIgnored:
		r = withRange(r, "")
	case kind == rangeSelects:
		r = withRange(r, header)
		if b, ok := obj.(ports.ReadBounder); ok {
			// A remote store then fetches the ranges, not everything from their offsets.
			b.BoundReads(rangesEnd(header))
		}
	case !conditional(r):
		refuseRange()
		return
	default:
		// If-Range may turn the range off, and a precondition may answer 304 or 412 first:
		// ServeContent decides, on a range it finds unsatisfiable too, and its plain-text
		// 416 is replaced by the problem document (fileWriter.refuseRange).
		r = withRange(r, "bytes="+strconv.FormatInt(size, 10)+"-")
	}
	orig := c.Writer
	w := &fileWriter{ResponseWriter: c.Writer}
	w.refuseRange = func() {
		c.Writer = orig
		refuseRange()
	}
	w.refuseCondition = func() {
		c.Writer = orig
		h.Del("Content-Disposition")
		h.Del("Content-Type")
		httpapi.PreconditionFailed(c)
	}
	httpapi.SendTimeFor(c, size) // before c.Writer is w, whose writer ResponseController cannot reach
	c.Writer = w
	http.ServeContent(w, r, "", img.CreatedAt(), obj)
}

// rangesEnd is one past the last byte that a header byteRanges returned selects: its
// ranges are "first-last", cut to the content.
func rangesEnd(header string) int64 {
	var end int64
	for spec := range strings.SplitSeq(strings.TrimPrefix(header, "bytes="), ",") {
		_, last, _ := strings.Cut(spec, "-")
		if n, err := strconv.ParseInt(last, 10, 64); err == nil {
			end = max(end, n+1)
		}
	}
	return end
}

// withRange is r with its Range header replaced by value ("" removes it); r itself is left
// as it is.
func withRange(r *http.Request, value string) *http.Request {
	out := *r
	out.Header = r.Header.Clone()
	if value == "" {
		out.Header.Del("Range")
	} else {
		out.Header.Set("Range", value)
	}
	return &out
}

// conditional reports whether r has a precondition or If-Range, which http.ServeContent
// evaluates before (or instead of) the range.
func conditional(r *http.Request) bool {
	for _, name := range []string{"If-Range", "If-None-Match", "If-Match", "If-Modified-Since", "If-Unmodified-Since"} {
		if r.Header.Get(name) != "" {
			return true
		}
	}
	return false
}

// What a request's Range header asks, by RFC 9110 section 14.
const (
	rangeNone           = iota // no Range header
	rangeIgnored               // a Range header the server ignores: the whole content is served
	rangeSelects               // a valid byte range set that selects bytes of the content
	rangeSelectsNothing        // a valid byte range set that selects none: 416
)

// byteRanges judges r's Range header against content of size bytes. Range handling is
// defined for GET only, and a server must ignore a range unit it does not understand
// (section 14.2); a ranges-specifier that is not valid may be ignored, and is. A valid
// "bytes" range set is satisfiable when one of its ranges has a first position below size, or
// is a suffix of more than zero bytes of content that is not empty (section 14.1.2). For a
// satisfiable one it returns the header to hand to http.ServeContent: "bytes=" and the ranges
// that select bytes, cut to the content, in the syntax ServeContent's parser reads (it takes
// the unit in lower case only, refuses numbers past int64 and answers a zero-byte suffix with
// an empty 206).
//
// A set of more than maxByteRanges ranges that select bytes, or of ranges that overlap, is
// ignored too, as section 14.2 allows for "a ranges-specifier with more than two overlapping
// ranges, or a set of many small ranges" (the marks of a broken client or of a denial of
// service): http.ServeContent answered each range as a part of its own, about 130 bytes of
// part headers each, so the 16,000 one-byte ranges that fit in the 64 KiB of request headers
// drew 1.9 MB of multipart answer (and 0.66 s of work) from a public image of 1.47 MB, and
// repeated ranges re-read the same bytes from the store each time.
func byteRanges(r *http.Request, size int64) (string, int) {
	values := r.Header.Values("Range")
	if len(values) == 0 {
		return "", rangeNone
	}
	if r.Method != http.MethodGet || len(values) != 1 {
		return "", rangeIgnored
	}
	unit, set, ok := strings.Cut(values[0], "=")
	if !ok || !strings.EqualFold(unit, "bytes") {
		return "", rangeIgnored
	}
	var out strings.Builder
	var selected [][2]int64
	specs := 0
	for spec := range strings.SplitSeq(set, ",") {
		spec = strings.Trim(spec, " \t") // OWS around list elements; empty elements are allowed
		if spec == "" {
			continue
		}
		specs++
		first, last, ok := strings.Cut(spec, "-")
		if !ok {
			return "", rangeIgnored
		}
		var from, to int64 // the range as first and last byte, before cutting to the content
		switch first {
		case "":
			n, ok := digits(last)
			if !ok {
				return "", rangeIgnored
			}
			if n == 0 || size == 0 {
				continue // a suffix of no bytes, or of empty content, selects none
			}
			from, to = max(size-n, 0), size-1
		default:
			start, ok := digits(first)
			if !ok {
				return "", rangeIgnored
			}
			end := int64(math.MaxInt64)
			if last != "" {
				if end, ok = digits(last); !ok || end < start {
					return "", rangeIgnored
				}
			}
			if start >= size {
				continue // starts past the content: selects none
			}
			from, to = start, min(end, size-1)
		}
		if len(selected) == maxByteRanges {
			return "", rangeIgnored
		}
		selected = append(selected, [2]int64{from, to})
		if out.Len() == 0 {
			out.WriteString("bytes=")
		} else {
			out.WriteByte(',')
		}
		out.WriteString(strconv.FormatInt(from, 10) + "-" + strconv.FormatInt(to, 10))
	}
	switch {
	case specs == 0:
		return "", rangeIgnored // a range set holds at least one range
	case out.Len() == 0:
		return "", rangeSelectsNothing
	case overlap(selected):
		return "", rangeIgnored
	}
	return out.String(), rangeSelects
}

// maxByteRanges is the most ranges a Range header may select and still be served as ranges;
// a set of more is ignored (byteRanges). Clients that ask for several ranges (PDF viewers,
// download managers) ask for a few.
const maxByteRanges = 100

// overlap reports whether two of the ranges (first and last byte) share a byte. It sorts
// ranges.
func overlap(ranges [][2]int64) bool {
	slices.SortFunc(ranges, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
	for i := 1; i < len(ranges); i++ {
		if ranges[i][0] <= ranges[i-1][1] {
			return true
		}
	}
	return false
}

// digits reads a run of decimal digits (RFC 9110's 1*DIGIT: no sign, no space), taking a
// number past int64 for the largest int64, which is past any content's end all the same.
func digits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := range len(s) {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > (math.MaxInt64-int64(c-'0'))/10 {
			n = math.MaxInt64
			continue
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// contentDisposition is the inline disposition of a file name: mime.FormatMediaType quotes
// it, or encodes it as RFC 2231 UTF-8 when it is not plain ASCII, so that no name (quotes,
// semicolons, line breaks) can end the parameter or the header. A name it cannot format at
// all gives a bare "inline".
func contentDisposition(filename string) string {
	if d := mime.FormatMediaType("inline", map[string]string{"filename": filename}); d != "" {
		return d
	}
	return "inline"
}

// fileWriter hands http.ServeContent's copy to the connection's ReadFrom, which sends an
// object that is an open file (the filesystem store's) with sendfile(2); gin's writer has no
// ReadFrom, so every byte went through a 32 KiB buffer, a read and a write per 32 KiB. It
// stands in for c.Writer during the answer, so that Size (the access log's bytes) counts
// what ReadFrom sent.
//
// It also stands in for http.ServeContent's plain-text 416 (a range that selects nothing,
// under a precondition that let it apply) and its bodiless 412 (an If-Match or
// If-Unmodified-Since the content does not meet, which it sent with the image's type):
// refuseRange and refuseCondition answer problem documents instead, and what ServeContent
// writes after its status is dropped.
type fileWriter struct {
	gin.ResponseWriter
	sent            int64
	refuseRange     func()
	refuseCondition func()
	refused         bool
}

func (w *fileWriter) WriteHeader(code int) {
	var refuse func()
	switch code {
	case http.StatusRequestedRangeNotSatisfiable:
		refuse = w.refuseRange
	case http.StatusPreconditionFailed:
		refuse = w.refuseCondition
	}
	if refuse != nil {
		if !w.refused {
			w.refused = true
			refuse()
		}
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *fileWriter) Write(b []byte) (int, error) {
	if w.refused {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func (w *fileWriter) WriteString(s string) (int, error) {
	if w.refused {
		return len(s), nil
	}
	return w.ResponseWriter.WriteString(s)
}

func (w *fileWriter) ReadFrom(r io.Reader) (int64, error) {
	w.WriteHeaderNow()
	if u, ok := w.ResponseWriter.(interface{ Unwrap() http.ResponseWriter }); ok {
		if rf, ok := u.Unwrap().(io.ReaderFrom); ok {
			n, err := rf.ReadFrom(r)
			w.sent += n
			return n, err
		}
	}
	// Write only (no ReadFrom of its own), so this does not come back here.
	return io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
}

// Size counts the bytes ReadFrom sent too.
func (w *fileWriter) Size() int {
	n := w.ResponseWriter.Size()
	if n < 0 {
		return n
	}
	return n + int(w.sent)
}
