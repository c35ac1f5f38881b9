package argon2id

import (
	"github.com/google/wire"

	"github.com/acme/postsvc/ports"
)

// ProviderSet provides the Argon2id hasher as the ports.PasswordHasher. It needs a
// config.Auth in the injector.
var ProviderSet = wire.NewSet(
	NewHasher,
	wire.Bind(new(ports.PasswordHasher), new(*Hasher)),
)
