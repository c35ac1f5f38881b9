package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/domain/posts/post"
)

// BenchmarkDecodePost measures decodeJSON on the largest valid post, once as plain text and
// once with every byte escaped as \u00XX (6 MiB of JSON for 1 MiB of text), the worst case
// the post body limit admits.
func BenchmarkDecodePost(b *testing.B) {
	gin.SetMode(gin.ReleaseMode)
	cases := map[string]string{
		"plain 1 MiB":   strings.Repeat("a", post.MaxTextBytes),
		"escaped 1 MiB": strings.Repeat("\x01", post.MaxTextBytes),
	}
	for name, text := range cases {
		body, err := json.Marshal(newPostRequest{Text: text})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			s := &server{}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				c, _ := gin.CreateTestContext(httptest.NewRecorder())
				c.Request = httptest.NewRequest(http.MethodPost, "/api/v1/posts", bytes.NewReader(body))
				c.Request.Header.Set("Content-Type", "application/json")
				var req newPostRequest
				if !s.decodeJSON(c, bodyOptions{limit: postBodyLimit}, &req) || len(req.Text) != post.MaxTextBytes {
					b.Fatal("decode failed")
				}
			}
		})
	}
}
