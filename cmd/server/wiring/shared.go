package wiring

import (
	"log/slog"

	"github.com/google/wire"
	"gorm.io/gorm"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/adapters/redisx"
	"github.com/acme/postsvc/adapters/stampboard"
	"github.com/acme/postsvc/adapters/throttle"
	accountsapp "github.com/acme/postsvc/application/accounts"
	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/ports"
)

// sharedStateSet is what instances share, or what one process keeps in memory when it is
// alone: the stamp board and the principal cache over it.
//
//nolint:unused // used by the wireinject injectors
var sharedStateSet = wire.NewSet(
	newRedisHealth,
	newStampBoard,
	newPrincipals,
	throttle.NewMemory,
	newAttemptThrottle,
)

// newAttemptThrottle counts login and signup attempts in Redis when instances share one
// (on a connection of its own: it needs no client-side cache), with this process's memory as
// the fallback while Redis cannot be reached; in memory alone otherwise.
func newAttemptThrottle(cfg *config.Config, local *throttle.Memory, clock ports.Clock, health *redisx.Health) (ports.AttemptThrottle, func(), error) {
	if !cfg.Redis.Enabled() {
		return local, func() {}, nil
	}
	client, err := redisx.Open(cfg.Redis, nil)
	if err != nil {
		return nil, nil, err
	}
	return throttle.NewShared(client, cfg.Redis.Prefix, cfg.Redis.Timeout, cfg.Throttle, clock, local, health), client.Close, nil
}

// newRedisHealth tracks Redis for logs and metrics; nil without Redis.
func newRedisHealth(cfg *config.Config, logger *slog.Logger) *redisx.Health {
	if !cfg.Redis.Enabled() {
		return nil
	}
	return redisx.NewHealth(logger)
}

// newStampBoard chooses where stamps are published:
//   - APP_REDIS_URL set: Redis, shared by every instance;
//   - SQLite without Redis: this process's memory, since the database file's lock makes it
//     the only server on that database;
//   - MySQL without Redis: nowhere (nil), so every request reads its principal from the
//     database, which stays correct with any number of instances.
func newStampBoard(cfg *config.Config, health *redisx.Health, db *gorm.DB) (ports.StampBoard, func(), error) {
	switch {
	case cfg.Redis.Enabled():
		b, err := stampboard.OpenRedis(cfg.Redis, health, gormstore.NewCutoffs(db))
		if err != nil {
			return nil, nil, err
		}
		return b, b.Close, nil
	case cfg.Database.Driver == config.DriverSQLite:
		return stampboard.NewLocal(0), func() {}, nil
	default:
		return nil, func() {}, nil
	}
}

// cliStampBoard is the board of a command-line process: it publishes to Redis when instances
// share one, so that a command's writes reach their principals; a process-local board would
// reach nobody, so there is none otherwise.
func cliStampBoard(cfg *config.Config, db *gorm.DB) (ports.StampBoard, func(), error) {
	if !cfg.Redis.Enabled() {
		return nil, func() {}, nil
	}
	return newStampBoard(cfg, redisx.NewHealth(slog.Default()), db)
}

func newPrincipals(board ports.StampBoard) *accountsapp.Principals {
	return accountsapp.NewPrincipals(board, accountsapp.PrincipalSettings{})
}
