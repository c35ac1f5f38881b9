package main

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/wire"
	"gorm.io/gorm"

	"github.com/acme/postsvc/adapters/argon2id"
	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/adapters/metrics"
	"github.com/acme/postsvc/adapters/postcache"

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
	postsSettings,
	posts.NewService,
	wire.Bind(new(ports.PostService), new(*posts.Service)),
	admin.NewService,
	wire.Bind(new(ports.AdminService), new(*admin.Service)),
)

func authSettings(cfg config.Auth) auth.Settings {
	return auth.Settings{RefreshTokenTTL: cfg.RefreshTokenTTL}
}

// postsSettings bounds list pages by the size of posts as the HTTP adapter encodes them, so
// the contract's 4 MiB is counted in the bytes a client receives.
func postsSettings() posts.Settings {
	return posts.Settings{PageBytes: posts.MaxPageBytes, PostSize: httpapi.PostWireBytes}
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

// observabilitySet provides the Prometheus metrics and what they add to the router. The
// metrics adapter sees the pool, the cache and the hasher only through the functions built
// here, so no adapter imports another.
//
//nolint:unused // used by the wireinject injector
var observabilitySet = wire.NewSet(
	metricsSources,
	metrics.ProviderSet,
	newScrapeHandler,
	routerExtras,
)

// metricsSources reads the database pool statistics, the post cache counters and the hashes
// in flight at scrape time.
func metricsSources(db *gorm.DB, cache *postcache.Cache, hasher *argon2id.Hasher) (metrics.Sources, error) {
	sqlDB, err := db.DB()
	if err != nil {
		return metrics.Sources{}, err
	}
	return metrics.Sources{
		DBStats: sqlDB.Stats,
		Cache: func() metrics.CacheStats {
			s := cache.Stats()
			return metrics.CacheStats{
				Hits: s.Hits, Misses: s.Misses, Evictions: s.Evictions, Rejected: s.Rejected,
				Bytes: s.Bytes, Items: s.Items,
			}
		},
		HashesInFlight: hasher.InFlight,
		HashesQueued:   hasher.Queued,
		HashesShed:     hasher.Shed,
	}, nil
}

// routerExtras hands the router the request metrics middleware and, unless an operations
// listener is configured (APP_HTTP_OPS_ADDR), GET /metrics. With one, /metrics is served
// there only, and the API's address answers it 404 like any unknown path, so request
// counts and pool statistics are not readable by whoever can reach the API.
func routerExtras(m *metrics.Metrics, scrape scrapeHandler, cfg config.HTTP) httpapi.RouterExtras {
	extras := httpapi.RouterExtras{Middleware: []gin.HandlerFunc{m.Middleware()}}
	if cfg.OpsAddr == "" {
		extras.Routes = append(extras.Routes, httpapi.Route{Method: http.MethodGet, Path: "/metrics", Handler: gin.WrapH(scrape)})
	}
	return extras
}
