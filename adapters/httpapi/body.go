package httpapi

import (
	"bufio"
	"compress/gzip"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
)

// Bodies that are not one JSON object: a route that reads its body as a stream (a multipart
// upload of images, a large file) gets it from StreamBody or Multipart, under the same rules
// as Decode: the route's BodyLimit (refused with 413 on the declared length alone, or as soon
// as more arrives), compressed bodies only where the route accepts them, and read errors
// answered by BodyError (413, 408 for a client too slow, 400 otherwise).

// openBody checks the declared length against limit and returns the body, limited to limit
// bytes as sent and, when the route accepts gzip and the client used it, to limit bytes once
// decompressed: a small gzip bomb is refused with 413 like a large body, never inflated into
// memory. On failure it has answered and returns false.
func openBody(c *gin.Context, limit int64, compressed bool) (io.Reader, bool) {
	r := c.Request
	if r.ContentLength > limit {
		// Refused on the declared length alone: nothing of the body is read.
		c.Header("Connection", "close")
		writeProblem(c, newProblem(http.StatusRequestEntityTooLarge, CodePayloadTooLarge,
			"The request body must be at most "+strconv.FormatInt(limit, 10)+" bytes."))
		return nil, false
	}
	watch := &deadlineWatch{ReadCloser: r.Body}
	c.Set(deadlineWatchKey{}, watch)
	body := io.Reader(http.MaxBytesReader(c.Writer, watch, limit))
	switch codings := contentCodings(r.Header); {
	case len(codings) == 0:
	case len(codings) == 1 && codings[0] == "gzip" && compressed:
		body = &gunzipLimited{src: body, limit: limit}
	case len(codings) > 1 && compressed:
		writeProblem(c, newProblem(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType,
			"The request body's Content-Encoding lists "+strconv.Itoa(len(codings))+" codings; one, gzip, is accepted here."))
		return nil, false
	default:
		writeProblem(c, newProblem(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType,
			"The request body's Content-Encoding is not accepted here"+map[bool]string{true: " (gzip is).", false: "."}[compressed]))
		return nil, false
	}
	return body, true
}

// deadlineWatch notes that a read of the request's body passed the connection's read deadline
// (APP_HTTP_READ_TIMEOUT). net/http cancels the request's context as that read fails, and a
// buffered reader above it (the multipart reader's) may still hand out what it holds, so the
// route's next step (a database call) can fail with the cancelled context before the read
// error reaches the route: fail answers that as the 408 it is, not as a 503.
type deadlineWatch struct {
	io.ReadCloser
	hit atomic.Bool
}

type deadlineWatchKey struct{}

func (d *deadlineWatch) Read(p []byte) (int, error) {
	n, err := d.ReadCloser.Read(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		d.hit.Store(true)
	}
	return n, err
}

// bodyTimedOut reports whether a read of c's body passed the read deadline (deadlineWatch).
func bodyTimedOut(c *gin.Context) bool {
	v, _ := c.Get(deadlineWatchKey{})
	d, ok := v.(*deadlineWatch)
	return ok && d.hit.Load()
}

// contentCodings are the codings a request's Content-Encoding applied, in order, over every
// line of the header (RFC 9110 section 8.4: several lines are one comma-separated list),
// lower-cased, without "identity", which changes nothing.
func contentCodings(h http.Header) []string {
	var codings []string
	for _, line := range h.Values("Content-Encoding") {
		for coding := range strings.SplitSeq(line, ",") {
			if coding = strings.ToLower(strings.TrimSpace(coding)); coding != "" && coding != "identity" {
				codings = append(codings, coding)
			}
		}
	}
	return codings
}

// gunzipLimited decompresses src lazily (the gzip header is read on the first Read, so a
// malformed stream is a read error like any other) and fails with an *http.MaxBytesError once
// more than limit bytes have come out.
type gunzipLimited struct {
	src   io.Reader
	limit int64
	zr    *gzip.Reader
	n     int64
	err   error
}

func (g *gunzipLimited) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	if g.zr == nil {
		zr, err := gzip.NewReader(g.src)
		if err != nil {
			g.err = gunzipError(err)
			return 0, g.err
		}
		g.zr = zr
	}
	if int64(len(p)) > g.limit-g.n+1 {
		p = p[:g.limit-g.n+1]
	}
	n, err := g.zr.Read(p)
	g.n += int64(n)
	if g.n > g.limit {
		g.err = &http.MaxBytesError{Limit: g.limit}
		return 0, g.err
	}
	if err != nil && !errors.Is(err, io.EOF) {
		err = gunzipError(err)
		g.err = err
	}
	return n, err
}

// gunzipError is what a failed decompression answers: the body's limit and the read timeout
// met while reading the compressed stream, its own header included, are themselves (413,
// 408); anything else is a stream that does not decompress (400).
func gunzipError(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) || errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	return errMalformedGzip
}

// errMalformedGzip is a body that says it is gzip and does not decompress.
var errMalformedGzip = errors.New("the request body is not valid gzip")

// StreamBody returns the body of a route that reads it as a stream, limited to the route's
// BodyLimit. On failure it has answered (413, 415) and returns false. Errors met while reading
// it go to BodyError. Once the route has read the body, Received stops the time spent
// receiving it from counting against the request timeout.
func StreamBody(c *gin.Context) (io.Reader, bool) {
	rs := settingsOf(c)
	now := time.Now()
	c.Set(receiveStartKey{}, now)
	if rt := kernelOf(c).readTimeout; rt > 0 {
		// net/http set the connection's read deadline to the request's start plus the read
		// timeout, a little before now: this is that deadline or a little after it.
		c.Set(readDeadlineKey{}, &readDeadline{at: now.Add(rt)})
	}
	return openBody(c, rs.bodyLimit, rs.compressed)
}

// StreamJSON is StreamBody for a JSON document the route decodes as a stream (an ECG upload
// of 64 MiB): a body not declared as JSON is refused with 415 before it is read.
func StreamJSON(c *gin.Context) (io.Reader, bool) {
	if !jsonMediaType(c.GetHeader("Content-Type")) {
		unsupportedMediaType(c)
		return nil, false
	}
	return StreamBody(c)
}

type receiveStartKey struct{}

type readDeadlineKey struct{}

// readDeadline is the connection's read deadline for the request's body, as ReadTimeFor
// moves it.
type readDeadline struct{ at time.Time }

// ReadTimeFor tells the kernel that the server worked for d of its own while reading a
// StreamBody or Multipart body (cleaning and storing an upload's files as they arrive): the
// connection's read deadline, the request's start plus APP_HTTP_READ_TIMEOUT, moves later by
// d, so that the read timeout bounds the client's sending and not the server's work. Without
// it, an upload whose files took the server long to clean got 408 "not received within the
// read timeout" although the client had sent everything. The route bounds its work itself
// (the media upload's APP_MEDIA_UPLOAD_TIMEOUT).
func ReadTimeFor(c *gin.Context, d time.Duration) {
	v, _ := c.Get(readDeadlineKey{})
	rd, ok := v.(*readDeadline)
	if !ok || d <= 0 {
		return
	}
	rd.at = rd.at.Add(d)
	_ = http.NewResponseController(c.Writer).SetReadDeadline(rd.at)
}

// Received tells the kernel that the route has read its whole StreamBody: as with Decode, the
// time spent receiving it (bounded by the read timeout) does not count against the request
// timeout, and the work that follows gets extra on top of it, for work that grows with the
// body (storing a 64 MiB upload).
func Received(c *gin.Context, extra time.Duration) {
	v, _ := c.Get(receiveStartKey{})
	started, ok := v.(time.Time)
	if !ok {
		return
	}
	pauseDeadline(c, time.Since(started)+max(extra, 0))
}

// multipartReadSize is how much of a multipart body is read from the connection at a time.
// The multipart reader's own buffer is 4 KiB, which made a 1 MiB upload 256 reads: read(2)
// was 14 % of the server's CPU under 64 concurrent 1 MiB image uploads.
const multipartReadSize = 64 << 10

// multipartBuffers recycles the read buffers of multipart bodies, so memory follows the
// uploads in flight, not the uploads made.
var multipartBuffers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, multipartReadSize) }}

// Multipart returns the parts of a multipart/form-data body, read as a stream within the
// route's BodyLimit, and a function that gives its read buffer back: call it (defer it) once
// nothing reads the parts any more. On failure it has answered (413, 415) and returns false.
// Errors met while reading the parts go to BodyError.
func Multipart(c *gin.Context) (*multipart.Reader, func(), bool) {
	mediaType, params, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil || mediaType != "multipart/form-data" || params["boundary"] == "" {
		writeProblem(c, newProblem(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType,
			"The request body must be multipart/form-data, with its boundary in the Content-Type."))
		return nil, nil, false
	}
	body, ok := StreamBody(c)
	if !ok {
		return nil, nil, false
	}
	br, _ := multipartBuffers.Get().(*bufio.Reader)
	br.Reset(body)
	release := func() {
		br.Reset(nil)
		multipartBuffers.Put(br)
	}
	// multipart.NewReader keeps a *bufio.Reader at least as large as its own as it is.
	return multipart.NewReader(br, params["boundary"]), release, true
}

// BodyError answers an error met while reading a StreamBody or Multipart body: 413 once the
// body passes the route's limit, 408 for a client too slow to send it, 400 otherwise.
func BodyError(c *gin.Context, err error) { kernelOf(c).bodyReadError(c, err) }
