package jwttoken

import (
	"github.com/google/wire"

	"github.com/acme/postsvc/ports"
)

// ProviderSet provides the HS256 issuer as the ports.TokenIssuer. It needs a config.Auth and
// a ports.Clock in the injector.
var ProviderSet = wire.NewSet(
	NewIssuer,
	wire.Bind(new(ports.TokenIssuer), new(*Issuer)),
)
