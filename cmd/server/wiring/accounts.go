package wiring

import (
	"github.com/google/wire"

	"github.com/acme/postsvc/adapters/accounts/accountsgorm"
	"github.com/acme/postsvc/adapters/accounts/accountshttp"
	"github.com/acme/postsvc/adapters/accounts/argon2id"
	"github.com/acme/postsvc/adapters/accounts/jwttoken"
	accountsapp "github.com/acme/postsvc/application/accounts"
	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/ports/accounts"
)

// accountsSet is the accounts context: its store, hasher and token issuer, its use cases
// (personal API keys among them) and its HTTP module. It lives here, not in application/, because the inner layers may not
// import wire (test/arch enforces it).
//
//nolint:unused // used by the wireinject injectors
var accountsSet = wire.NewSet(
	accountsCoreSet,
	jwttoken.ProviderSet,
	authSettings,
	accountsapp.NewAuth,
	wire.Bind(new(accounts.AuthService), new(*accountsapp.Auth)),
	apiKeySettings,
	accountsapp.NewAPIKeys,
	wire.Bind(new(accounts.APIKeyService), new(*accountsapp.APIKeys)),
	accountshttp.New,
)

// accountsCoreSet is what creating accounts needs (the users create command builds only
// this): the store, the hasher and the admin use case.
//
//nolint:unused // used by the wireinject injectors
var accountsCoreSet = wire.NewSet(
	accountsgorm.NewStore,
	wire.Bind(new(accounts.Store), new(*accountsgorm.Store)),
	argon2id.ProviderSet,
	accountsapp.NewAdmin,
	wire.Bind(new(accounts.AdminService), new(*accountsapp.Admin)),
)

func authSettings(cfg config.Auth) accountsapp.AuthSettings {
	return accountsapp.AuthSettings{RefreshTokenTTL: cfg.RefreshTokenTTL}
}

func apiKeySettings(cfg config.Auth) accountsapp.APIKeySettings {
	return accountsapp.APIKeySettings{UseFlushInterval: cfg.APIKeyFlushInterval}
}
