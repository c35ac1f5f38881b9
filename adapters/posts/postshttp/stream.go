package postshttp

import (
	"bytes"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/domain/posts/post"
	"github.com/acme/postsvc/ports/posts"
)

// Posts and pages of posts are streamed (httpapi.JSONStream): a post is up to 1 MiB of text,
// up to 6 MiB escaped, and a page up to 4 MiB of posts.

// postFieldsBytes is the fixed part of an encoded post, every byte but the three values.
const postFieldsBytes = int64(len(`{"id":,"text":,"created_at":}`))

// PostWireBytes is the exact size of p as the API encodes it in a response. The posts use case
// bounds list pages by it (the composition root hands it over), so the 4 MiB a page may
// hold is measured in the bytes a client receives.
func PostWireBytes(p *post.Post) int64 {
	return postFieldsBytes + httpapi.JSONStringBytes(string(p.ID())) + httpapi.JSONStringBytes(p.Text()) +
		httpapi.TimestampJSONBytes(p.CreatedAt())
}

// PostWireBytesBound bounds PostWireBytes from above for any post with that id and a text of
// that many bytes: escaping makes a byte at most six (\u00XX), the timestamp takes at most
// httpapi's longest. The posts use case leaves pages within it unmeasured.
func PostWireBytesBound(id post.ID, textBytes int64) int64 {
	return postFieldsBytes + httpapi.JSONStringMaxBytes(int64(len(id))) + httpapi.JSONStringMaxBytes(textBytes) +
		httpapi.MaxTimestampJSONBytes
}

// writePost answers one post.
func writePost(c *gin.Context, status int, p *post.Post) {
	js := httpapi.StartJSONStream(c, status, PostWireBytes(p)+1)
	defer js.Finish()
	writePostJSON(js, p)
	js.Raw("\n")
}

// writePostPage answers a page of posts: {"posts": [...], "next_cursor": string or null}. A
// page from the cache is encoded once and its bytes written on every hit (posts.Rendering);
// others are streamed.
func writePostPage(c *gin.Context, page posts.PostPage) {
	if b, ok := page.Rendered.Bytes(func(limit int) ([]byte, bool) { return renderPostPage(page, limit) }); ok {
		httpapi.WriteEncodedJSON(c, http.StatusOK, b)
		return
	}
	js := httpapi.StartJSONStream(c, http.StatusOK, pageWireBytes(page))
	defer js.Finish()
	encodePostPage(js, page)
}

// renderPostPage encodes page into a buffer of at most limit bytes, sized from the lengths
// (pageWireEstimate), and reports false when the encoding needs more: the buffer refuses the
// write that would pass the limit and keeps nothing after it, so a page of texts that escape
// six-fold costs its budget in memory once (the rendering is not attempted again), not its
// full size on every hit.
func renderPostPage(page posts.PostPage, limit int) ([]byte, bool) {
	estimate := pageWireEstimate(page)
	if estimate > int64(limit) {
		return nil, false
	}
	b := cappedBuffer{limit: limit}
	b.buf.Grow(int(estimate))
	js := httpapi.NewJSONStream(&b)
	encodePostPage(js, page)
	js.Finish()
	if js.Failed() {
		return nil, false
	}
	return b.buf.Bytes(), true
}

// cappedBuffer is a bytes.Buffer that refuses a write that would take it past limit.
type cappedBuffer struct {
	buf   bytes.Buffer
	limit int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if b.buf.Len()+len(p) > b.limit {
		return 0, errRenderingOverBudget
	}
	return b.buf.Write(p)
}

var errRenderingOverBudget = errors.New("postshttp: the page's rendering is over its budget")

// pageWireEstimate is the size of the encoded page when nothing in it needs escaping, found
// without reading the texts: enough room for a rendering (which takes its length from what it
// holds) in the common case, where pageWireBytes would walk every text once more.
func pageWireEstimate(page posts.PostPage) int64 {
	size := int64(len(`{"posts":[],"next_cursor":}`)+len("\n")+len("null")) + int64(len(page.NextCursor))
	for _, p := range page.Posts {
		size += 1 + postFieldsBytes + int64(len(p.ID())+len(p.Text())) + 4 + maxTimestampBytes
	}
	return size
}

// maxTimestampBytes is the longest a post's quoted created_at is: RFC 3339 in UTC with
// nanoseconds.
const maxTimestampBytes = int64(len(`"2006-01-02T15:04:05.999999999Z"`))

// pageWireBytes is the exact size of the encoded page.
func pageWireBytes(page posts.PostPage) int64 {
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
		size += httpapi.JSONStringBytes(page.NextCursor)
	}
	return size
}

func encodePostPage(js *httpapi.JSONStream, page posts.PostPage) {
	js.Raw(`{"posts":[`)
	for i, p := range page.Posts {
		if i > 0 {
			js.Raw(",")
		}
		writePostJSON(js, p)
	}
	js.Raw(`],"next_cursor":`)
	if page.NextCursor == "" {
		js.Raw("null")
	} else {
		js.String(page.NextCursor)
	}
	js.Raw("}\n")
}

func writePostJSON(js *httpapi.JSONStream, p *post.Post) {
	js.Raw(`{"id":`)
	js.String(string(p.ID()))
	js.Raw(`,"text":`)
	js.String(p.Text())
	js.Raw(`,"created_at":`)
	js.Time(p.CreatedAt())
	js.Raw("}")
}
