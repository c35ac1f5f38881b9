package mediahttp

import (
	"io"
	"mime"
	"net/http"
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
func serve(c *gin.Context, img *image.Image, obj ports.Object, contentType, etag, filename string) {
	h := c.Writer.Header()
	setCaching(c, img)
	h.Set("Content-Type", contentType)
	h.Set("ETag", etag)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Disposition", contentDisposition(filename))
	if size := obj.Info().Size; !satisfiable(c.Request, size) {
		h.Del("Content-Disposition")
		h.Del("Content-Type")
		httpapi.RangeNotSatisfiable(c, size)
		return
	}
	w := &fileWriter{ResponseWriter: c.Writer}
	c.Writer = w
	http.ServeContent(w, c.Request, "", img.CreatedAt(), obj)
}

// satisfiable reports whether the request's Range, if it has one that applies, selects any
// of the content's size bytes, by the rules of RFC 9110 section 14.1. http.ServeContent
// answers an unsatisfiable range 416 in plain text, which the contract does not allow for an
// error, and takes a suffix of zero bytes ("bytes=-0") for an empty 206 with an impossible
// Content-Range; such requests are answered here instead. A Range that If-Range turns off, or
// that a conditional request answers 304 or 412, is left to ServeContent.
func satisfiable(r *http.Request, size int64) bool {
	header := r.Header.Get("Range")
	if header == "" || r.Header.Get("If-Range") != "" || r.Header.Get("If-None-Match") != "" ||
		r.Header.Get("If-Match") != "" || r.Header.Get("If-Modified-Since") != "" || r.Header.Get("If-Unmodified-Since") != "" {
		return true
	}
	const unit = "bytes="
	if !strings.HasPrefix(header, unit) {
		return false
	}
	selects := false
	for _, ra := range strings.Split(header[len(unit):], ",") {
		ra = strings.TrimSpace(ra)
		if ra == "" {
			continue
		}
		first, last, ok := strings.Cut(ra, "-")
		if !ok {
			return false
		}
		first, last = strings.TrimSpace(first), strings.TrimSpace(last)
		if first == "" {
			n, err := strconv.ParseInt(last, 10, 64)
			if err != nil || n < 0 || last == "" || last[0] == '-' || last[0] == '+' {
				return false
			}
			selects = selects || (n > 0 && size > 0)
			continue
		}
		start, err := strconv.ParseInt(first, 10, 64)
		if err != nil || start < 0 || first[0] == '+' {
			return false
		}
		if last != "" {
			end, err := strconv.ParseInt(last, 10, 64)
			if err != nil || end < start || last[0] == '+' {
				return false
			}
		}
		selects = selects || start < size
	}
	return selects
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
type fileWriter struct {
	gin.ResponseWriter
	sent int64
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
