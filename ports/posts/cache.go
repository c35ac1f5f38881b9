package posts

import (
	"context"
	"sync"

	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/posts/post"
)

// PostPage is one page of an author's posts, newest first. NextCursor is empty on the last
// page. Posts are immutable; a cache hands every caller its own copy of the slice.
type PostPage struct {
	Posts      []*post.Post
	NextCursor string
	// Rendered keeps the page's wire form once an adapter has made it, so that a cached page
	// is encoded once rather than on every hit. The cache gives every page it stores one,
	// shared by all the copies it hands out; a page it does not hold has none (nil).
	Rendered *Rendering
}

// Rendering is the wire form of one cached page, made by the first caller that needs it.
type Rendering struct {
	limit int
	once  sync.Once
	b     []byte // nil when the page did not fit the budget
}

// NewRendering returns an empty rendering that keeps at most limit bytes: the memory the
// cache budgeted for it.
func NewRendering(limit int) *Rendering { return &Rendering{limit: limit} }

// Bytes returns the page's wire form and true, made by render the first time. render gets the
// most bytes the rendering may hold and reports false as soon as the page needs more (a page
// whose escaping makes it larger than budgeted); the page is then never rendered again and
// Bytes reports false on every call, so the caller writes it another way (streams it) and no
// request holds more than the budget. A nil Rendering reports false without rendering. The
// bytes are shared: read only.
func (r *Rendering) Bytes(render func(limit int) ([]byte, bool)) ([]byte, bool) {
	if r == nil {
		return nil, false
	}
	r.once.Do(func() {
		if b, ok := render(r.limit); ok && len(b) <= r.limit {
			r.b = b
		}
	})
	return r.b, r.b != nil
}

// PostPageKey identifies a cached page. Version is the author's posts version read with the
// caller's principal, so a write makes every older key unreachable.
type PostPageKey struct {
	UserID  identity.UserID
	Version int64
	Cursor  string
	Limit   int
}

// PostListCache caches post pages in memory.
type PostListCache interface {
	// GetOrLoad returns the page for key. On a miss it runs load once for all concurrent
	// callers of the same key and keeps the result when it fits the byte budget. hit reports
	// whether the page came from the cache.
	GetOrLoad(ctx context.Context, key PostPageKey, load func(ctx context.Context) (PostPage, error)) (page PostPage, hit bool, err error)
	// Forget drops every cached page of a user; called after a commit changed its posts.
	Forget(userID identity.UserID)
}
