package argon2id

import (
	"github.com/acme/postsvc/ports/accounts"
	"github.com/google/wire"
)

// ProviderSet provides the Argon2id hasher as the accounts.PasswordHasher. It needs a
// config.Auth in the injector.
var ProviderSet = wire.NewSet(
	NewHasher,
	wire.Bind(new(accounts.PasswordHasher), new(*Hasher)),
)
