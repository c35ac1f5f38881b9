package main

import (
	"context"
	"time"

	"github.com/google/wire"
	"gorm.io/gorm"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/adapters/httpapi"

	"github.com/acme/postsvc/application/admin"
	"github.com/acme/postsvc/application/auth"
	"github.com/acme/postsvc/application/posts"
	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/ports"
)

// applicationSet provides the use cases. It lives here rather than in application/ because
// the inner layers may not import wire (test/arch enforces it). Only the injector in wire.go
// (built with the wireinject tag) refers to it.
//
//nolint:unused // used by the wireinject injector
var applicationSet = wire.NewSet(
	authSettings,
	auth.NewService,
	wire.Bind(new(ports.AuthService), new(*auth.Service)),
	posts.NewService,
	wire.Bind(new(ports.PostService), new(*posts.Service)),
	admin.NewService,
	wire.Bind(new(ports.AdminService), new(*admin.Service)),
)

func authSettings(cfg config.Auth) auth.Settings {
	return auth.Settings{RefreshTokenTTL: cfg.RefreshTokenTTL}
}

// infrastructureSet adapts adapter constructors whose inputs the injector cannot name alone.
//
//nolint:unused // used by the wireinject injector
var infrastructureSet = wire.NewSet(
	newMigrator,
	readyCheck,
)

func newMigrator(db *gorm.DB, cfg config.Database) (*gormstore.Migrator, error) {
	return gormstore.NewMigrator(db, cfg.Driver)
}

// readyTimeout bounds the database ping of /readyz, so a hung database turns the probe to 503
// quickly instead of holding the prober.
const readyTimeout = 2 * time.Second

func readyCheck(store *gormstore.Store) httpapi.ReadyFunc {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, readyTimeout)
		defer cancel()
		return store.Ping(ctx)
	}
}
