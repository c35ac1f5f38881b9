package system

import (
	"github.com/google/wire"

	"github.com/acme/postsvc/ports"
)

// ProviderSet provides the real clock and the UUIDv7 generator behind their ports.
var ProviderSet = wire.NewSet(
	NewClock,
	wire.Bind(new(ports.Clock), new(Clock)),
	NewIDs,
	wire.Bind(new(ports.IDGenerator), new(*IDs)),
)
