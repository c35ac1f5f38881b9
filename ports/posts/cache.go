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
	b     []byte
}

// NewRendering returns an empty rendering that keeps at most limit bytes: the memory the
// cache budgeted for it.
func NewRendering(limit int) *Rendering { return &Rendering{limit: limit} }

// Bytes returns the page's wire form: made by render the first time and kept when it fits
// the budget, made again by render on every call otherwise (a page whose escaping makes it
// larger than budgeted). A nil Rendering always renders. The bytes are shared: read only.
func (r *Rendering) Bytes(render func() []byte) []byte {
	if r == nil {
		return render()
	}
	var fresh []byte
	r.once.Do(func() {
		fresh = render()
		if len(fresh) <= r.limit {
			r.b = fresh
		}
	})
	switch {
	case r.b != nil:
		return r.b
	case fresh != nil:
		return fresh
	}
	return render()
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
