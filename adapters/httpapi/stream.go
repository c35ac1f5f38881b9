package httpapi

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/domain/post"
	"github.com/acme/postsvc/ports"
)

// Posts are written by streaming rather than through writeJSON: a post holds up to 1 MiB of
// text, which escapes to up to 6 MiB of JSON, and a list page up to 4 MiB of posts. Encoding
// such a body into one buffer first would take several times its size per request (the buffer
// doubles as it grows), which many concurrent requests turn into hundreds of MiB. Here the
// exact size is computed first, so the response still carries its Content-Length, and the
// bytes go out through a small pooled buffer; runs of text that need no escaping are handed to
// the connection as they are, without a copy. The output is byte for byte what encoding/json
// (HTML escaping off) makes of toPost and toPostPage, which stream_test.go checks.

// streamChunk is the pooled buffer's size: large enough that small responses go out in one
// write, small enough that holding one per request in flight costs little.
const streamChunk = 32 << 10

var streamBuffers = newBufferPool(streamChunk)

// postFieldsBytes is the fixed part of an encoded post, every byte but the three values.
const postFieldsBytes = int64(len(`{"id":,"text":,"created_at":}`))

// PostWireBytes is the exact size of p as the API encodes it in a response. The posts use case
// bounds list pages by it (the composition root hands it over), so the 4 MiB a page may
// hold is measured in the bytes a client receives.
func PostWireBytes(p *post.Post) int64 {
	return postFieldsBytes + jsonStringBytes(string(p.ID())) + jsonStringBytes(p.Text()) +
		jsonStringBytes(timestamp(p.CreatedAt()))
}

// writePost answers one post.
func writePost(c *gin.Context, status int, p *post.Post) {
	js := startStream(c, status, PostWireBytes(p)+1)
	defer js.finish()
	js.post(p)
	js.raw("\n")
}

// writePostPage answers a page of posts: {"posts": [...], "next_cursor": string or null}.
func writePostPage(c *gin.Context, page ports.PostPage) {
	size := int64(len(`{"posts":[],"next_cursor":}`) + len("\n"))
	for i, p := range page.Posts {
		if i > 0 {
			size++ // the comma
		}
		size += PostWireBytes(p)
	}
	if page.NextCursor == "" {
		size += int64(len("null"))
	} else {
		size += jsonStringBytes(page.NextCursor)
	}
	js := startStream(c, http.StatusOK, size)
	defer js.finish()
	js.raw(`{"posts":[`)
	for i, p := range page.Posts {
		if i > 0 {
			js.raw(",")
		}
		js.post(p)
	}
	js.raw(`],"next_cursor":`)
	if page.NextCursor == "" {
		js.raw("null")
	} else {
		js.str(page.NextCursor)
	}
	js.raw("}\n")
}

// jsonStream writes JSON to a response through a pooled buffer of streamChunk bytes.
type jsonStream struct {
	w   io.Writer
	buf *bytes.Buffer
	err error // the first write error; the client has gone, so the rest is dropped
}

func startStream(c *gin.Context, status int, size int64) *jsonStream {
	h := c.Writer.Header()
	h.Set("Content-Type", jsonContentType)
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	c.Status(status)
	return &jsonStream{w: c.Writer, buf: streamBuffers.get()}
}

func (j *jsonStream) post(p *post.Post) {
	j.raw(`{"id":`)
	j.str(string(p.ID()))
	j.raw(`,"text":`)
	j.str(p.Text())
	j.raw(`,"created_at":`)
	j.str(timestamp(p.CreatedAt()))
	j.raw("}")
}

// raw appends s as it is. A piece too big for the buffer is written straight through.
func (j *jsonStream) raw(s string) {
	if j.buf.Len()+len(s) > streamChunk {
		j.flush()
		if len(s) > streamChunk {
			if j.err == nil {
				_, j.err = io.WriteString(j.w, s)
			}
			return
		}
	}
	j.buf.WriteString(s)
}

// str appends s as a JSON string.
func (j *jsonStream) str(s string) {
	j.raw(`"`)
	escapeJSONString(s, j.raw)
	j.raw(`"`)
}

func (j *jsonStream) flush() {
	if j.buf.Len() > 0 && j.err == nil {
		_, j.err = j.w.Write(j.buf.Bytes())
	}
	j.buf.Reset()
}

func (j *jsonStream) finish() {
	j.flush()
	streamBuffers.put(j.buf)
}

// jsonStringBytes is the length of s encoded as a JSON string, quotes included.
func jsonStringBytes(s string) int64 {
	n := int64(2)
	escapeJSONString(s, func(piece string) { n += int64(len(piece)) })
	return n
}

// escapeJSONString hands emit the body of s as a JSON string (without the quotes), in pieces:
// runs of bytes that need no escaping, and escapes. It follows encoding/json with HTML
// escaping off: quote, backslash and control characters are escaped (the five with short
// forms as such, the others as \u00XX), invalid UTF-8 becomes \ufffd, and U+2028 and U+2029
// are escaped so the output is also valid JavaScript.
func escapeJSONString(s string, emit func(string)) {
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			if start < i {
				emit(s[start:i])
			}
			emit(asciiEscapes[b])
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		var esc string
		switch {
		case r == utf8.RuneError && size == 1:
			esc = `\ufffd`
		case r == '\u2028':
			esc = `\u2028`
		case r == '\u2029':
			esc = `\u2029`
		default:
			i += size
			continue
		}
		if start < i {
			emit(s[start:i])
		}
		emit(esc)
		i += size
		start = i
	}
	if start < len(s) {
		emit(s[start:])
	}
}

// asciiEscapes holds the escape of every ASCII byte that needs one; the others are "".
var asciiEscapes = func() (t [utf8.RuneSelf]string) {
	const hex = "0123456789abcdef"
	for b := range 0x20 {
		t[b] = `\u00` + string(hex[b>>4]) + string(hex[b&0xf])
	}
	t['\b'], t['\f'], t['\n'], t['\r'], t['\t'] = `\b`, `\f`, `\n`, `\r`, `\t`
	t['"'], t['\\'] = `\"`, `\\`
	return t
}()
