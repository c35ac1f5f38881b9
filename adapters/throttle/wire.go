package throttle

import (
	"github.com/google/wire"

	"github.com/acme/postsvc/ports"
)

// ProviderSet provides the in-memory attempt throttle as the ports.AttemptThrottle. It needs a
// config.Throttle and a ports.Clock in the injector.
var ProviderSet = wire.NewSet(
	NewMemory,
	wire.Bind(new(ports.AttemptThrottle), new(*Memory)),
)
