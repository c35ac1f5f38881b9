package gormstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"text/tabwriter"
	"time"

	"github.com/pressly/goose/v3"
	"gorm.io/gorm"

	"github.com/acme/postsvc/config"
)

// migrations holds the versioned schema, one folder per dialect. The files are embedded so the
// binary that runs is always paired with the schema it was built and tested against.
//
//go:embed migrations/mysql/*.sql migrations/sqlite/*.sql
var migrations embed.FS

// Migrator applies, reverts and reports the schema migrations of one database.
type Migrator struct {
	provider *goose.Provider
	db       *sql.DB
	// locker is set on MySQL, where several instances can share one database.
	locker *mysqlLocker
	// names are the data migrations' names, by version.
	names map[int64]string
}

// NewMigrator prepares the migrations of driver (config.DriverMySQL or config.DriverSQLite)
// for the database behind db. On MySQL, every operation holds a named server lock for its whole
// run, so instances that start together migrate one after the other: the first applies the
// pending migrations and the others find nothing left to do. The lock is held on a connection
// of its own, so the pool must allow at least two.
//
// data are the migrations written in Go that the contexts contribute (see DataMigration), in
// any order; they run in version order with the SQL files.
func NewMigrator(db *gorm.DB, driver string, data ...DataMigration) (*Migrator, error) {
	var (
		dialect goose.Dialect
		dir     string
		locker  *mysqlLocker
		opts    = []goose.ProviderOption{
			// Only this package's SQL files: a Go migration registered globally by some
			// imported package must never run against this schema.
			goose.WithDisableGlobalRegistry(true),
			goose.WithLogger(goose.NopLogger()),
		}
	)
	switch driver {
	case config.DriverMySQL:
		dialect, dir = goose.DialectMySQL, "migrations/mysql"
		// goose v3.29 ships a table-based MySQL locker (a lease kept alive by heartbeat
		// goroutines) but no session locker, and it could not be used as one anyway:
		// Provider.Up first calls HasPending, which creates goose's version table without
		// taking any lock, so two instances starting on an empty database race there ("missing
		// zero version migration"). The Migrator therefore takes MySQL's own GET_LOCK around
		// each whole goose call instead; see locked.
		locker = &mysqlLocker{wait: migrationLockWait}
	case config.DriverSQLite:
		// SQLite needs no lock: goose runs each migration in a transaction, which takes the
		// database's single write lock (BEGIN IMMEDIATE, see sqliteDSN).
		dialect, dir = goose.DialectSQLite3, "migrations/sqlite"
	default:
		return nil, fmt.Errorf("gormstore: no migrations for database driver %q", driver)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("gormstore: %w", err)
	}
	if locker != nil && sqlDB.Stats().MaxOpenConnections == 1 {
		return nil, errors.New("gormstore: migrating MySQL needs a pool of at least two connections (one holds the lock)")
	}
	fsys, err := fs.Sub(migrations, dir)
	if err != nil {
		return nil, fmt.Errorf("gormstore: %w", err)
	}
	names := make(map[int64]string, len(data))
	for _, d := range data {
		opts = append(opts, goose.WithGoMigrations(d.migration(driver)))
		names[d.Version] = d.Name
	}
	provider, err := goose.NewProvider(dialect, sqlDB, fsys, opts...)
	if err != nil {
		return nil, fmt.Errorf("gormstore: load migrations: %w", err)
	}
	return &Migrator{provider: provider, db: sqlDB, locker: locker, names: names}, nil
}

// locked runs fn while holding the migration lock, when the database needs one.
func (m *Migrator) locked(ctx context.Context, fn func() error) (err error) {
	if m.locker == nil {
		return fn()
	}
	conn, err := m.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := m.locker.lock(ctx, conn); err != nil {
		return err
	}
	defer func() {
		// Release even when ctx has ended, or the lock would last as long as the connection.
		err = errors.Join(err, m.locker.unlock(context.WithoutCancel(ctx), conn))
	}()
	return fn()
}

// migrationLockWait bounds how long an instance waits for another one's migration to finish
// before giving up with an error (and, typically, being restarted by its supervisor).
const migrationLockWait = 60 * time.Second

// Up applies every pending migration. Applying none is not an error.
func (m *Migrator) Up(ctx context.Context) error {
	err := m.locked(ctx, func() error {
		_, err := m.provider.Up(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("gormstore: migrate up: %w", MapErr(err))
	}
	return nil
}

// Down reverts the most recently applied migration. It fails when none is applied.
func (m *Migrator) Down(ctx context.Context) error {
	err := m.locked(ctx, func() error {
		_, err := m.provider.Down(ctx)
		return err
	})
	if err != nil {
		if errors.Is(err, goose.ErrNoNextVersion) {
			return errors.New("gormstore: migrate down: no migration is applied")
		}
		return fmt.Errorf("gormstore: migrate down: %w", MapErr(err))
	}
	return nil
}

// Latest returns the version of the newest migration this binary carries.
func (m *Migrator) Latest() int64 {
	sources := m.provider.ListSources()
	if len(sources) == 0 {
		return 0
	}
	return sources[len(sources)-1].Version
}

// Version returns the version of the most recently applied migration, 0 when none is.
func (m *Migrator) Version(ctx context.Context) (int64, error) {
	var v int64
	err := m.locked(ctx, func() (err error) {
		v, err = m.provider.GetDBVersion(ctx)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("gormstore: migration version: %w", MapErr(err))
	}
	return v, nil
}

// Status writes one line per known migration: version, state (applied or pending), when it was
// applied, and its file.
func (m *Migrator) Status(ctx context.Context, w io.Writer) error {
	var statuses []*goose.MigrationStatus
	err := m.locked(ctx, func() (err error) {
		statuses, err = m.provider.Status(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("gormstore: migration status: %w", MapErr(err))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tSTATE\tAPPLIED AT\tFILE")
	for _, s := range statuses {
		applied := "-"
		if s.State == goose.StateApplied && !s.AppliedAt.IsZero() {
			applied = s.AppliedAt.UTC().Format(time.RFC3339)
		}
		source := s.Source.Path
		if source == "" {
			source = m.names[s.Source.Version] + " (Go)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", s.Source.Version, s.State, applied, source)
	}
	return tw.Flush()
}
