//go:build wireinject

package main

import (
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/wire"

	"github.com/acme/postsvc/adapters/argon2id"
	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/adapters/jwttoken"
	"github.com/acme/postsvc/adapters/postcache"
	"github.com/acme/postsvc/adapters/system"
	"github.com/acme/postsvc/adapters/throttle"
	"github.com/acme/postsvc/config"
)

// newApp is the injector: wire generates its body in wire_gen.go from the provider sets of
// each package. Regenerate with `make generate` after changing a constructor.
func newApp(cfg *config.Config, logger *slog.Logger) (*app, func(), error) {
	wire.Build(
		wire.FieldsOf(new(*config.Config), "HTTP", "Database", "Auth", "Cache", "Throttle"),
		system.ProviderSet,
		gormstore.ProviderSet,
		argon2id.ProviderSet,
		jwttoken.ProviderSet,
		postcache.ProviderSet,
		throttle.ProviderSet,
		applicationSet,
		infrastructureSet,
		observabilitySet,
		httpapi.ProviderSet,
		wire.Bind(new(http.Handler), new(*gin.Engine)),
		wire.Struct(new(app), "*"),
	)
	return nil, nil, nil
}
