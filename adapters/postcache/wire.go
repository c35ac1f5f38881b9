package postcache

import (
	"github.com/google/wire"

	"github.com/acme/postsvc/ports"
)

// ProviderSet provides the in-memory post-list cache as the ports.PostListCache. It needs a
// config.Cache in the injector.
var ProviderSet = wire.NewSet(
	New,
	wire.Bind(new(ports.PostListCache), new(*Cache)),
)
