package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	"github.com/gin-gonic/gin"
)

// jsonContentType is the media type of every successful JSON response.
const jsonContentType = "application/json; charset=utf-8"

// encodeBuffers recycles response buffers: a list page is several KiB and would otherwise be
// grown from nothing on every request. Buffers that grew past maxPooledBuffer (a 1 MiB post
// echoed back) are left to the garbage collector rather than pinned in the pool.
var encodeBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledBuffer = 64 << 10

// writeJSON encodes v completely before sending anything, so an encoding failure becomes a
// clean 500 instead of a truncated 200, and the response carries its Content-Length instead
// of being chunked. HTML characters are not escaped: the body is served as JSON with nosniff,
// and escaping would only inflate post text.
func (s *server) writeJSON(c *gin.Context, status int, v any) {
	buf, _ := encodeBuffers.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledBuffer {
			encodeBuffers.Put(buf)
		}
	}()
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
