package wiring

import (
	"github.com/google/wire"

	"github.com/acme/postsvc/adapters/posts/postcache"
	"github.com/acme/postsvc/adapters/posts/postsgorm"
	"github.com/acme/postsvc/adapters/posts/postshttp"
	postsapp "github.com/acme/postsvc/application/posts"
	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/ports/posts"
)

// postsSet is the posts context: its store and list cache, its use case and its HTTP module.
//
//nolint:unused // used by the wireinject injectors
var postsSet = wire.NewSet(
	postsgorm.NewStore,
	wire.Bind(new(posts.Store), new(*postsgorm.Store)),
	postcache.ProviderSet,
	postsSettings,
	postsapp.NewService,
	wire.Bind(new(posts.PostService), new(*postsapp.Service)),
	postshttp.New,
)

// postsSettings bounds list pages by the size of posts as the HTTP module encodes them, so the
// contract's 4 MiB is counted in the bytes a client receives, and carries the posts quota.
func postsSettings(cfg config.Posts) postsapp.Settings {
	return postsapp.Settings{
		PageBytes: postsapp.MaxPageBytes, PostSize: postshttp.PostWireBytes, PostSizeBound: postshttp.PostWireBytesBound,
		QuotaBytes: cfg.QuotaBytes,
	}
}
