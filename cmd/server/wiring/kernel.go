// Package wiring is the composition root's wiring: the wire injectors that build the server,
// the migration command and the account command from every package's providers, and the
// lists that name the bounded contexts. It is a package of its own, not part of main, so the
// benchmarks (test/bench) build the service with the same injector as the server instead of a
// hand-wired copy that could drift.
//
// Adding a bounded context adds its provider set to the injectors and an entry to the lists
// in contexts.go; nothing else here names a context.
package wiring

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/wire"
	"gorm.io/gorm"

	"github.com/acme/postsvc/adapters/accounts/argon2id"
	"github.com/acme/postsvc/adapters/accounts/jwttoken"
	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/adapters/metrics"
	"github.com/acme/postsvc/adapters/posts/postcache"
	"github.com/acme/postsvc/adapters/redisx"
	"github.com/acme/postsvc/adapters/stampboard"
	"github.com/acme/postsvc/adapters/system"
	"github.com/acme/postsvc/adapters/worker"
	accountsapp "github.com/acme/postsvc/application/accounts"
	ecgapp "github.com/acme/postsvc/application/ecg"
	mediaapp "github.com/acme/postsvc/application/media"
	"github.com/acme/postsvc/cmd/server/datamigrations"
	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/ports"
)

// Server is everything `server serve` runs.
type Server struct {
	Config    *config.Config
	Logger    *slog.Logger
	Router    http.Handler
	Scrape    ScrapeHandler
	Readiness *httpapi.Readiness
	Migrator  *gormstore.Migrator
	Admin     *accountsapp.Admin
	Jobs      worker.Group
	// JobQueue is the queue the workers claim from; with SQLite the server releases, at
	// start, the leases that a previous process of its own left (gormstore.ReleaseLeases).
	JobQueue *gormstore.JobQueue
	// Auth, Tokens and PostCache are reached by the benchmarks (test/bench), which measure
	// authentication, token verification and cache misses through the same wiring.
	Auth      *accountsapp.Auth
	Tokens    *jwttoken.Issuer
	PostCache *postcache.Cache
	// APIKeys writes the recorded uses of personal API keys: periodically while serving, and
	// once more after the HTTP server has stopped.
	APIKeys *accountsapp.APIKeys
	// Media sweeps stored objects that no image refers to, at start and periodically.
	Media *mediaapp.Service
	// Board is where stamps are published (nil: MySQL without Redis); MigrateIfEnabled lets
	// it read the tables it depends on once they exist.
	Board ports.StampBoard
	// Connections counts the listeners' connections (httpapi.LimitConnections,
	// GuardRefusals) for /metrics.
	Connections *httpapi.Connections
}

// Migration is what `server migrate` needs: the database and its migrator, nothing else.
type Migration struct {
	Migrator *gormstore.Migrator
}

// Accounts is what `server users create` needs: the migrator and the admin use case, without
// the HTTP stack, the caches or the other contexts.
type Accounts struct {
	Config   *config.Config
	Migrator *gormstore.Migrator
	Admin    *accountsapp.Admin
}

// ECG is what `server ecg reanalyse` needs: the migrator and the ECG use case.
type ECG struct {
	Config   *config.Config
	Migrator *gormstore.Migrator
	ECG      *ecgapp.Service
}

// Media is what `server media gc` needs: the migrator and the media use case.
type Media struct {
	Config   *config.Config
	Migrator *gormstore.Migrator
	Media    *mediaapp.Service
}

// MigrateIfEnabled applies pending migrations when APP_DATABASE_MIGRATE_ON_START says so.
func (m *Media) MigrateIfEnabled(ctx context.Context) error {
	return migrateIfEnabled(ctx, m.Config, m.Migrator)
}

// MigrateIfEnabled applies pending migrations when APP_DATABASE_MIGRATE_ON_START says so.
func (e *ECG) MigrateIfEnabled(ctx context.Context) error {
	return migrateIfEnabled(ctx, e.Config, e.Migrator)
}

// migrateIfEnabled applies pending migrations when APP_DATABASE_MIGRATE_ON_START says so.
func migrateIfEnabled(ctx context.Context, cfg *config.Config, m *gormstore.Migrator) error {
	if !cfg.Database.MigrateOnStart {
		return nil
	}
	if err := m.Up(ctx); err != nil {
		return fmt.Errorf("migrations (set %s=false to skip them at start): %w", config.EnvName("database.migrate_on_start"), err)
	}
	return nil
}

// MigrateIfEnabled applies pending migrations when APP_DATABASE_MIGRATE_ON_START says so.
// The Redis stamp board then reads the cut-off table at once (on a fresh database it could
// not, when it opened), so that principals are served from memory from the first request.
func (s *Server) MigrateIfEnabled(ctx context.Context) error {
	if err := migrateIfEnabled(ctx, s.Config, s.Migrator); err != nil {
		return err
	}
	if b, ok := s.Board.(*stampboard.Redis); ok {
		b.ReadCutoffs()
	}
	return nil
}

// MigrateIfEnabled applies pending migrations when APP_DATABASE_MIGRATE_ON_START says so.
func (a *Accounts) MigrateIfEnabled(ctx context.Context) error {
	return migrateIfEnabled(ctx, a.Config, a.Migrator)
}

// kernelSet is the shared kernel's infrastructure: the database, the unit of work, the clock
// and ids, the throttle and the job queue.
//
//nolint:unused // used by the wireinject injectors
var kernelSet = wire.NewSet(
	wire.FieldsOf(new(*config.Config), "HTTP", "Database", "Auth", "Cache", "Throttle", "Jobs", "Posts", "ECG", "Media", "Storage"),
	system.ProviderSet,
	gormstore.ProviderSet,
	newMigrator,
	gormstore.NewJobQueue,
	wire.Bind(new(ports.JobQueue), new(*gormstore.JobQueue)),
	gormstore.NewStamps,
	wire.Bind(new(ports.Stamps), new(gormstore.Stamps)),
)

//nolint:unused // used by the wireinject injectors
var serverSet = wire.NewSet(
	kernelSet,
	sharedStateSet,
	storageSet,
	newJobRunners,
	readyCheck,
	httpapi.ProviderSet,
	wire.Bind(new(http.Handler), new(*gin.Engine)),
	metricsSources,
	metrics.ProviderSet,
	newScrapeHandler,
	routerExtras,
)

func newMigrator(db *gorm.DB, cfg config.Database) (*gormstore.Migrator, error) {
	return gormstore.NewMigrator(db, cfg.Driver, datamigrations.All...)
}

// readyTimeout bounds the database ping of /readyz, so a hung database turns the probe to 503
// quickly instead of holding the prober.
const readyTimeout = 2 * time.Second

// readyCheck is ready when the database answers and the object store can be used (the S3
// bucket reached, the data folder writable).
func readyCheck(p *gormstore.Pinger, objects ports.ObjectStore) httpapi.ReadyFunc {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, readyTimeout)
		defer cancel()
		if err := p.Ping(ctx); err != nil {
			return err
		}
		if err := objects.Check(ctx); err != nil {
			return fmt.Errorf("object storage: %w", err)
		}
		return nil
	}
}

// newJobRunners runs the background jobs of every context's pools in this process: a runner
// per pool, all woken when this process enqueues a job of theirs.
func newJobRunners(q *gormstore.JobQueue, clock ports.Clock, logger *slog.Logger, cfg config.Jobs, pools JobPools) (worker.Group, error) {
	group := make(worker.Group, 0, len(pools))
	for i, pool := range pools {
		settings := worker.Settings{
			Workers: pool.Workers, Lease: cfg.Lease, PollInterval: cfg.PollInterval, ShutdownGrace: cfg.ShutdownGrace,
			GiveUp: pool.GiveUp,
		}
		if i == 0 {
			// One runner purges the failed jobs of every kind.
			settings.FailedRetention = cfg.FailedRetention
		}
		r, err := worker.New(q, clock, logger.With("pool", pool.Name), settings, pool.Handlers)
		if err != nil {
			return nil, fmt.Errorf("job pool %s: %w", pool.Name, err)
		}
		group = append(group, r)
	}
	// A job enqueued by this process starts milliseconds after its commit, not at the next poll.
	q.OnEnqueue(group.Notify)
	return group, nil
}

// ScrapeHandler answers GET /metrics. It is its own type so that wire can hand the one handler
// to whichever listener serves it: the API's router when APP_HTTP_OPS_ADDR is empty, the
// operations listener otherwise.
type ScrapeHandler http.Handler

func newScrapeHandler(m *metrics.Metrics) ScrapeHandler { return m.Handler() }

// metricsSources reads the database pool statistics, the post cache counters, the hasher's
// slots and the job counts at scrape time. adapters/metrics sees them only through these
// functions, so it imports no other adapter.
func metricsSources(db *gorm.DB, cache *postcache.Cache, hasher *argon2id.Hasher, jobs *gormstore.JobQueue, runners worker.Group,
	media *mediaapp.Service, principals *accountsapp.Principals, health *redisx.Health, conns *httpapi.Connections,
	board ports.StampBoard,
) (metrics.Sources, error) {
	sqlDB, err := db.DB()
	if err != nil {
		return metrics.Sources{}, err
	}
	var (
		redis   func() (bool, int64, int64)
		cutoffs func() int64
	)
	if health != nil {
		redis, cutoffs = health.Stats, health.Cutoffs
	}
	var boardReads func() (int64, int64)
	if rb, ok := board.(*stampboard.Redis); ok {
		boardReads = rb.ReadStats
	}
	return metrics.Sources{
		Connections:  conns.Stats,
		DBStats:      sqlDB.Stats,
		Principals:   principals.Stats,
		Redis:        redis,
		RedisCutoffs: cutoffs,
		BoardReads:   boardReads,
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
		Jobs: func(ctx context.Context) ([]metrics.JobStats, error) {
			list, err := jobs.Stats(ctx)
			if err != nil {
				return nil, err
			}
			out := make([]metrics.JobStats, len(list))
			for i, s := range list {
				out[i] = metrics.JobStats{Kind: s.Kind, Queued: s.Queued, Running: s.Running, Failed: s.Failed, OldestQueuedAge: s.OldestQueuedAge}
			}
			return out, nil
		},
		JobKinds:    runners.Kinds(),
		JobOutcomes: runners.Outcomes,
		Media: func() metrics.MediaStats {
			s := media.Stats()
			return metrics.MediaStats{Uploaded: s.Uploaded, UploadedBytes: s.UploadedBytes, Refused: s.Refused, Thumbnails: s.Thumbnails, Placeholders: s.Placeholders, Swept: s.Swept}
		},
	}, nil
}

// routerExtras hands the router the request metrics middleware and, unless an operations
// listener is configured (APP_HTTP_OPS_ADDR), GET /metrics. With one, /metrics is served there
// only, and the API's address answers it 404 like any unknown path, so request counts and pool
// statistics are not readable by whoever can reach the API.
func routerExtras(m *metrics.Metrics, scrape ScrapeHandler, cfg config.HTTP) httpapi.RouterExtras {
	extras := httpapi.RouterExtras{Middleware: []gin.HandlerFunc{m.Middleware(httpapi.RecordedStatus)}}
	if cfg.OpsAddr == "" {
		extras.Routes = append(extras.Routes, httpapi.OpsRoute{Method: http.MethodGet, Path: "/metrics", Handler: gin.WrapH(scrape)})
	}
	return extras
}
