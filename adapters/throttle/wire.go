package throttle

import (
	"github.com/google/wire"

	"github.com/acme/postsvc/ports"
)

// ProviderSet provides the in-memory login throttle as the ports.LoginThrottle. It needs a
// config.Throttle and a ports.Clock in the injector.
var ProviderSet = wire.NewSet(
	NewMemory,
	wire.Bind(new(ports.LoginThrottle), new(*Memory)),
)
