package imaging

import (
	"github.com/google/wire"

	"github.com/acme/postsvc/ports/media"
)

// ProviderSet provides the pure-Go imaging adapter as the media.Imaging. It needs an
// imaging.Config in the injector (its zero value is fine: the system temporary directory
// and the 50-megapixel thumbnail limit).
var ProviderSet = wire.NewSet(
	New,
	wire.Bind(new(media.Imaging), new(*Imaging)),
)
