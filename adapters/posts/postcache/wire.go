package postcache

import (
	"github.com/google/wire"

	"github.com/acme/postsvc/ports/posts"
)

// ProviderSet provides the in-memory post-list cache as the posts.PostListCache. It needs a
// config.Cache in the injector.
var ProviderSet = wire.NewSet(
	New,
	wire.Bind(new(posts.PostListCache), new(*Cache)),
)
