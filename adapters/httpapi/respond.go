package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// jsonContentType is the media type of every successful JSON response.
const jsonContentType = "application/json; charset=utf-8"

// bufferPool recycles response buffers, so a response is not grown from nothing on every
// request. Buffers that grew past the pool's limit are left to the garbage collector rather
// than pinned in the pool.
type bufferPool struct {
	pool     sync.Pool
	maxBytes int
}

func newBufferPool(maxBytes int) *bufferPool {
	return &bufferPool{pool: sync.Pool{New: func() any { return new(bytes.Buffer) }}, maxBytes: maxBytes}
}

func (p *bufferPool) get() *bytes.Buffer {
	buf, _ := p.pool.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	return buf
}

func (p *bufferPool) put(buf *bytes.Buffer) {
	if buf.Cap() <= p.maxBytes {
		p.pool.Put(buf)
	}
}

// encodeBuffers serve writeJSON, whose responses are small (users, sessions, problems, pages
// of the user directory); posts, which can be large, are streamed instead (stream.go).
var encodeBuffers = newBufferPool(64 << 10)

// writeJSON encodes v completely before sending anything, so an encoding failure becomes a
// clean 500 instead of a truncated 200, and the response carries its Content-Length instead
// of being chunked. HTML characters are not escaped: the body is served as JSON with nosniff,
// and escaping would only inflate text.
func (s *server) writeJSON(c *gin.Context, status int, v any) {
	buf := encodeBuffers.get()
	defer encodeBuffers.put(buf)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		s.fail(c, fmt.Errorf("encode response: %w", err))
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Type", jsonContentType)
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	c.Status(status)
	_, _ = c.Writer.Write(buf.Bytes())
}

// statusResponse is the body of the probes.
type statusResponse struct {
	Status string `json:"status"`
}

// Timestamp formats t as the API writes every time: RFC 3339 in UTC.
func Timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// NextCursor is a page's next_cursor: null in JSON on the last page.
func NextCursor(next string) *string {
	if next == "" {
		return nil
	}
	return &next
}
