package gormstore

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"
	"github.com/libtnb/sqlite"
	gormmysql "gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/acme/postsvc/config"
)

// Connection limits added to a MySQL DSN that does not set its own. They bound how long a
// request can wait on a dead or unreachable server, so an outage is answered with 503 within
// seconds instead of hanging until the kernel gives up on the socket.
const (
	mysqlDialTimeout  = 3 * time.Second
	mysqlReadTimeout  = 10 * time.Second
	mysqlWriteTimeout = 10 * time.Second
)

// sqliteMaxOpenConns caps the SQLite pool. In WAL mode readers never block the single writer
// and the writer never blocks readers, so a few connections let reads (the per-request
// principal check above all) run alongside a write. Write transactions start with BEGIN
// IMMEDIATE, so they wait for one another in SQLite's busy handler, which polls rather than
// queues: the more writers wait there at once, the more likely one of them loses every race
// until busy_timeout and fails. Keeping the pool small makes the surplus callers queue in
// database/sql instead, where the wait is fair and bounded by the request's context.
const sqliteMaxOpenConns = 4

// sqliteBusyTimeout is how long (in milliseconds) a connection waits for the write lock before
// SQLite answers SQLITE_BUSY, which mapErr reports as domain.ErrUnavailable.
const sqliteBusyTimeout = 5000

// Open connects to the database that cfg describes and returns the pool with a cleanup function
// that closes it. It fails when the database cannot be reached (wrapping domain.ErrUnavailable)
// so that a misconfigured or unreachable database stops start-up with a clear message rather
// than surfacing later as failing requests.
func Open(cfg config.Database) (*gorm.DB, func(), error) {
	var (
		dialector gorm.Dialector
		err       error
		// opened is a pool created here before gorm.Open, to be closed if that fails.
		opened *sql.DB
		// where says what Open tried with the settings, for the error when it fails.
		where string
	)
	maxOpen, maxIdle, lifetime := cfg.MaxOpenConns, cfg.MaxIdleConns, cfg.ConnMaxLifetime
	switch cfg.Driver {
	case config.DriverMySQL:
		var mc *mysqldriver.Config
		if mc, err = MySQLConfig(cfg.DSN); err != nil {
			return nil, nil, err
		}
		// The pool is built from the parsed configuration rather than a DSN string, because
		// a DSN cannot carry settings such as the driver's logger.
		var connector driver.Connector
		if connector, err = mysqldriver.NewConnector(mc); err != nil {
			return nil, nil, config.InvalidMySQLDSN(cfg.DSN, err)
		}
		pool := sql.OpenDB(connector)
		opened = pool
		// The DSN holds the password: the message names what was tried without it.
		where = fmt.Sprintf("connect to the MySQL database %q at %s %s as user %q", mc.DBName, mc.Net, mc.Addr, mc.User)
		dialector = gormmysql.New(gormmysql.Config{Conn: pool, DSNConfig: mc})
	case config.DriverSQLite:
		var (
			dsn    string
			memory bool
		)
		if dsn, memory, err = sqliteDSN(cfg.DSN); err != nil {
			return nil, nil, err
		}
		dialector = sqlite.Open(dsn)
		where = fmt.Sprintf("open the SQLite database %q", cfg.DSN)
		if maxOpen <= 0 || maxOpen > sqliteMaxOpenConns {
			maxOpen = sqliteMaxOpenConns
		}
		maxIdle = maxOpen
		// A connection to a local file costs nothing to keep, while reopening one reruns
		// the pragmas; only a server-side connection benefits from being recycled.
		lifetime = 0
		if memory {
			// Every connection to ":memory:" is a separate, empty database, so an
			// in-memory store must live on exactly one connection that is never closed.
			maxOpen, maxIdle = 1, 1
		}
	default:
		return nil, nil, fmt.Errorf("%s: must be %q or %q, got %q",
			config.EnvName("database.driver"), config.DriverSQLite, config.DriverMySQL, cfg.Driver)
	}

	db, err := gorm.Open(dialector, &gorm.Config{
		// Duplicate keys and foreign key violations come back as gorm.ErrDuplicatedKey and
		// gorm.ErrForeignKeyViolated, whichever the dialect, so uniqueness is enforced by the
		// database and recognised here without parsing driver messages.
		TranslateError: true,
		// The service logs errors itself, with the request id; GORM's own logger would print
		// SQL (and with it user data) to stdout.
		Logger:  logger.Discard,
		NowFunc: func() time.Time { return time.Now().UTC() },
		// Every repository write is a single statement, atomic on its own; work spanning
		// several statements goes through UnitOfWork. Wrapping each statement in its own
		// transaction would only add round trips.
		SkipDefaultTransaction: true,
	})
	if err != nil {
		if opened != nil {
			_ = opened.Close()
		}
		return nil, nil, &openError{where: where, cause: err}
	}
	if err := db.Use(&statements{}); err != nil {
		return nil, nil, fmt.Errorf("gormstore: %w", err)
	}
	if cfg.Driver == config.DriverSQLite {
		if err := db.Use(newWriteGate()); err != nil {
			return nil, nil, fmt.Errorf("gormstore: %w", err)
		}
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, nil, fmt.Errorf("gormstore: %w", err)
	}
	if maxOpen > 0 {
		sqlDB.SetMaxOpenConns(maxOpen)
	}
	sqlDB.SetMaxIdleConns(maxIdle)
	sqlDB.SetConnMaxLifetime(lifetime)
	cleanup := func() { _ = sqlDB.Close() }
	return db, cleanup, nil
}

// MySQLConfig merges the settings the adapter depends on into an operator's DSN. It goes
// through the driver's own parser so that user, password and existing parameters are kept
// exactly, whatever characters they contain. It is exported for the load runner
// (test/load), whose database ceilings must talk to MySQL exactly as the service does. A DSN
// the driver refuses is reported as config.InvalidMySQLDSN does: naming APP_DATABASE_DSN,
// with the driver's reason and never the password.
func MySQLConfig(dsn string) (*mysqldriver.Config, error) {
	mc, err := mysqldriver.ParseDSN(dsn)
	if err != nil {
		return nil, config.InvalidMySQLDSN(dsn, err)
	}
	// DATETIME columns are read into time.Time and both read and written as UTC, so the
	// server's or the host's time zone can never shift a timestamp.
	mc.ParseTime = true
	mc.Loc = time.UTC
	// utf8mb4 is the only MySQL character set that holds every Unicode character (posts keep
	// emoji byte for byte). The collation is left to the operator or the server default:
	// MariaDB lacks MySQL 8's utf8mb4_0900_* collations, and the columns declare their own
	// binary collations anyway.
	if err := mc.Apply(mysqldriver.Charset("utf8mb4", mc.Collation)); err != nil {
		return nil, config.InvalidMySQLDSN(dsn, err)
	}
	// Report rows matched rather than rows changed, as SQLite does, so that saving an
	// unchanged row is not mistaken for a missing one.
	mc.ClientFoundRows = true
	// Without interpolation every statement with arguments costs three commands (prepare,
	// execute, close); the per-request principal read alone then doubles the database work
	// of a cached list request. The driver escapes arguments itself, refuses to interpolate
	// under the multi-byte character sets where that is unsafe (utf8mb4 is not one), honours
	// NO_BACKSLASH_ESCAPES, and falls back to a prepared statement when the interpolated
	// query would exceed max_allowed_packet (a 1 MiB post full of quotes escapes to 2 MiB).
	mc.InterpolateParams = true
	if mc.Timeout == 0 {
		mc.Timeout = mysqlDialTimeout
	}
	if mc.ReadTimeout == 0 {
		mc.ReadTimeout = mysqlReadTimeout
	}
	if mc.WriteTimeout == 0 {
		mc.WriteTimeout = mysqlWriteTimeout
	}
	// The driver otherwise prints connection problems to stderr in its own format; they are
	// returned as errors and logged by the service with the request that met them.
	mc.Logger = log.New(io.Discard, "", 0)
	return mc, nil
}

// sqlitePragmas are applied by the driver to every new connection, in this order.
var sqlitePragmas = []string{
	// Readers and the writer do not block each other, and a commit is one append to the log.
	"journal_mode(WAL)",
	// Wait for the write lock instead of failing at once when another connection holds it.
	fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout),
	// SQLite ignores foreign keys unless asked, per connection; the schema relies on
	// ON DELETE CASCADE.
	"foreign_keys(1)",
}

// sqliteDSN turns a file path (optionally with driver parameters after "?") into the driver's
// DSN with the pragmas above and _txlock=immediate, and creates the file's directory. It
// reports whether the database is the in-memory one. Its errors name APP_DATABASE_DSN (a
// SQLite DSN holds no password, so they may show it).
//
// _txlock=immediate makes every transaction take the write lock at BEGIN. With the default
// (deferred), a transaction that reads and then writes tries to upgrade its lock mid-way and
// fails with SQLITE_BUSY at once if another connection is writing, because waiting could
// deadlock; taking the lock up front lets concurrent write transactions queue on
// busy_timeout instead.
func sqliteDSN(dsn string) (string, bool, error) {
	setting := config.EnvName("database.dsn")
	path, rawQuery, _ := strings.Cut(dsn, "?")
	if path == "" {
		return "", false, fmt.Errorf("%s: must be a SQLite file path, got %q", setting, dsn)
	}
	query, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", false, fmt.Errorf("%s: must be a SQLite file path, optionally followed by ?name=value parameters (%w), got %q", setting, err, dsn)
	}
	if query.Has("_time_format") || query.Has("_time_integer_format") {
		// The stored time format is part of the schema's contract: times are compared as
		// text, so every row must be written the same way.
		return "", false, fmt.Errorf("%s: must not set _time_format or _time_integer_format (the service fixes the format of stored times)", setting)
	}
	memory := path == ":memory:" || query.Get("mode") == "memory"
	if !memory {
		file := strings.TrimPrefix(path, "file:")
		if err := os.MkdirAll(filepath.Dir(file), 0o750); err != nil {
			return "", false, fmt.Errorf("%s: cannot create the folder of the SQLite file: %w", setting, err)
		}
		if err := restrictSQLiteFiles(file, query.Get("mode") != "ro"); err != nil {
			return "", false, fmt.Errorf("%s: %w", setting, err)
		}
	}
	// The operator's own pragmas run after the adapter's, so they can override them.
	query["_pragma"] = slices.Concat(sqlitePragmas, query["_pragma"])
	if !query.Has("_txlock") {
		query.Set("_txlock", "immediate")
	}
	// "2006-01-02 15:04:05.999999999-07:00": the format the files written by earlier versions
	// (glebarez/go-sqlite's default) hold, and one that sorts as time does for UTC times.
	query.Set("_time_format", "sqlite")
	// Every timestamp column is declared DATETIME, which the driver parses by itself. The
	// dialector would also have it try to parse any text without a declared type (an
	// expression) as a time; a hot statement that selects +created_at does so to get the
	// text and parse it faster itself (gormstore.Timestamp).
	query.Set("_texttotime", "0")
	return path + "?" + query.Encode(), memory, nil
}

// sqliteFileMode is the only access the database file and its -wal and -shm siblings get:
// they hold password hashes, refresh-token hashes, emails and every post, so no other local
// user may read them.
const sqliteFileMode os.FileMode = 0o600

// restrictSQLiteFiles makes the database file and its -wal and -shm siblings readable and
// writable by their owner only, before the driver opens them.
//
// The driver would create a missing file with SQLite's default 0644 less the umask, which
// usually leaves it readable by every local user; creating it here first (when create is
// set, that is unless the DSN opens it read-only) gives it 0600 whatever the umask or the
// folder. SQLite creates the -wal and -shm files with the mode of the database file, so they
// follow. Files that already exist with group or other bits, such as those created before
// this rule, are tightened rather than refused: they hold the same data, and the fix is the
// same one an operator would make by hand. A file whose mode cannot be changed (another
// user's) stops start-up, since serving from it would keep the data readable to others.
func restrictSQLiteFiles(file string, create bool) error {
	if create {
		// O_CREATE without O_EXCL: an existing file is opened and left untouched; only a
		// new, empty file gets created (an empty file is a valid, empty SQLite database).
		f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE, sqliteFileMode) //nolint:gosec // G304: the operator's own database path
		if err != nil {
			return fmt.Errorf("gormstore: create SQLite database file: %w", err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("gormstore: create SQLite database file: %w", err)
		}
	}
	for _, name := range []string{file, file + "-wal", file + "-shm"} {
		st, err := os.Stat(name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("gormstore: SQLite file: %w", err)
		}
		if st.Mode().Perm()&^sqliteFileMode == 0 {
			continue
		}
		if err := os.Chmod(name, st.Mode().Perm()&sqliteFileMode); err != nil {
			return fmt.Errorf("gormstore: %s is readable by other users (mode %04o) and cannot be restricted to %04o: %w",
				name, st.Mode().Perm(), sqliteFileMode, err)
		}
	}
	return nil
}

// openError is Open's error when the database the settings name cannot be used at start-up
// (unreachable, refused credentials, an unreadable file). Its message is for the operator: it
// names APP_DATABASE_DSN and what was tried, then gives the driver's reason, and never says
// "temporarily unavailable", the clients' wording. It still unwraps to
// domain.ErrUnavailable when the cause is one that may pass, like any other database error.
type openError struct {
	where string
	cause error
}

func (e *openError) Error() string {
	return fmt.Sprintf("%s: cannot %s: %v", config.EnvName("database.dsn"), e.where, e.cause)
}

func (e *openError) Unwrap() error { return MapErr(e.cause) }
