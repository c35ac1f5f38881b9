// Package postshttp is the posts context's HTTP module: a user adds, reads, lists and deletes
// its own posts. It registers its routes with the HTTP kernel (adapters/httpapi), which
// decodes, authenticates and answers errors for it; it writes posts itself, streamed
// (stream.go), because they are large.
package postshttp

import (
	"net/http"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/domain/posts/post"
	"github.com/acme/postsvc/ports/posts"
)

// bodyLimit admits the largest valid post however it is escaped: one byte of text is at most
// six bytes of JSON (\u00XX), plus room for the envelope. Anything larger is refused before
// it is read; text over its limit within a smaller body is refused as soon as the kernel has
// counted one byte too many of it (textLimit), without the rest of the body.
const bodyLimit int64 = 6*post.MaxTextBytes + 4096

// textLimit bounds the decoded text while the body arrives, with the domain's own answer.
var textLimit = []httpapi.StringLimit{{Member: "text", Bytes: post.MaxTextBytes, Err: post.ErrTextTooLarge}}

// headerCache tells whether a list page came from the in-memory cache.
const headerCache = "X-Cache"

// Module serves the posts context's routes.
type Module struct {
	posts posts.PostService
}

var _ httpapi.Module = (*Module)(nil)

// New builds the module on the posts use case.
func New(svc posts.PostService) *Module { return &Module{posts: svc} }

// Register adds the posts routes and documents their problem codes.
func (m *Module) Register(r *httpapi.Routes) {
	r.Handle(httpapi.Route{Method: http.MethodPost, Path: "/posts", Auth: httpapi.Required, Content: true, BodyLimit: bodyLimit, StringLimits: textLimit, Handler: m.addPost})
	r.Handle(httpapi.Route{Method: http.MethodGet, Path: "/posts", Auth: httpapi.Required, Content: true, Handler: m.listPosts})
	r.Handle(httpapi.Route{Method: http.MethodGet, Path: "/posts/:id", Auth: httpapi.Required, Content: true, Handler: m.getPost})
	r.Handle(httpapi.Route{Method: http.MethodDelete, Path: "/posts/:id", Auth: httpapi.Required, Content: true, Handler: m.deletePost})
	r.ExposeHeaders(headerCache)
	r.Problems(httpapi.ProblemDoc{
		Code: "post_not_found", Status: http.StatusNotFound, Title: "Post not found",
		Meaning: "The caller has no post with this id. Another user's post is answered the same way as a missing one.",
		Action:  "Check the id; the post may have been deleted.",
	})
}

// newPostRequest is the body of POST /posts.
type newPostRequest struct {
	Text string `json:"text"`
}
