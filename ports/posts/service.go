package posts

import (
	"context"

	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/posts/post"
	"github.com/acme/postsvc/ports"
)

// PostService is the posts use case. Every method acts on the caller's own posts only; an
// admin's principal is refused with domain.ErrForbidden.
type PostService interface {
	Add(ctx context.Context, p identity.Principal, text string) (*post.Post, error)
	Get(ctx context.Context, p identity.Principal, id string) (*post.Post, error)
	Delete(ctx context.Context, p identity.Principal, id string) error
	// List returns a page of the caller's posts; hit reports whether it came from the cache.
	List(ctx context.Context, p identity.Principal, req ports.PageRequest) (page PostPage, hit bool, err error)
}
