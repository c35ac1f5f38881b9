package jwttoken

import (
	"github.com/acme/postsvc/ports/accounts"
	"github.com/google/wire"
)

// ProviderSet provides the HS256 issuer as the accounts.TokenIssuer. It needs a config.Auth and
// a ports.Clock in the injector.
var ProviderSet = wire.NewSet(
	NewIssuer,
	wire.Bind(new(accounts.TokenIssuer), new(*Issuer)),
)
