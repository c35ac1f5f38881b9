package posts

import (
	"context"

	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/posts/post"
)

// PostPage is one page of an author's posts, newest first. NextCursor is empty on the last
// page. Posts are immutable; a cache hands every caller its own copy of the slice.
type PostPage struct {
	Posts      []*post.Post
	NextCursor string
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
