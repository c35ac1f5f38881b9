package postsfake

import (
	"context"
	"sync"

	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports/posts"
)

// Cache is a map-backed post-list cache without expiry or budget; it records what was
// forgotten so tests can check that the cache is touched only after a commit.
type Cache struct {
	mu        sync.Mutex
	pages     map[posts.PostPageKey]posts.PostPage
	Forgotten []identity.UserID
	Loads     int
}

// NewCache returns an empty cache.
func NewCache() *Cache { return &Cache{pages: map[posts.PostPageKey]posts.PostPage{}} }

// GetOrLoad implements posts.PostListCache.
func (c *Cache) GetOrLoad(ctx context.Context, key posts.PostPageKey, load func(context.Context) (posts.PostPage, error)) (posts.PostPage, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.pages[key]; ok {
		return posts.PostPage{Posts: append(p.Posts[:0:0], p.Posts...), NextCursor: p.NextCursor}, true, nil
	}
	c.Loads++
	p, err := load(ctx)
	if err != nil {
		return posts.PostPage{}, false, err
	}
	c.pages[key] = posts.PostPage{Posts: append(p.Posts[:0:0], p.Posts...), NextCursor: p.NextCursor}
	return p, false, nil
}

// Forget implements posts.PostListCache.
func (c *Cache) Forget(id identity.UserID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Forgotten = append(c.Forgotten, id)
	for k := range c.pages {
		if k.UserID == id {
			delete(c.pages, k)
		}
	}
}
