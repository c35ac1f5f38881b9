package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/gin-gonic/gin"
)

// jsonContentType is the media type of every successful JSON response.
const jsonContentType = "application/json; charset=utf-8"

// writeJSON encodes v completely before sending anything, so an encoding failure becomes a
// clean 500 instead of a truncated 200. HTML characters are not escaped: the body is served
// as JSON with nosniff, and escaping would only inflate post text.
func (s *server) writeJSON(c *gin.Context, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		s.fail(c, fmt.Errorf("encode response: %w", err))
		return
	}
	c.Header("Content-Type", jsonContentType)
	c.Status(status)
	_, _ = c.Writer.Write(buf.Bytes())
}
