package main

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/config"
)

// backend is one database the run measures the service on, with what its server runs with.
type backend struct {
	driver string // dbMySQL or dbSQLite
	// redis: the MySQL server(s) run with APP_REDIS_URL, sharing principals' stamps through
	// it. SQLite never does: its one process keeps them in memory.
	redis bool
}

// label names the backend in the report.
func (b backend) label() string {
	switch {
	case b.driver == dbSQLite:
		return "SQLite"
	case b.redis:
		return "MySQL with Redis"
	default:
		return "MySQL without Redis"
	}
}

// namePrefix starts the names of the backend's scenarios and ceilings: none on MySQL (the
// report's layout was MySQL's alone), "SQLite: " on SQLite.
func (b backend) namePrefix() string {
	if b.driver == dbSQLite {
		return "SQLite: "
	}
	return ""
}

// statements are the SQL texts of the backend's DB ceilings.
func (b backend) statements() statements {
	if b.driver == dbSQLite {
		return sqliteStatements
	}
	return mysqlStatements
}

// dbReport is what the report says about one backend: its three posts targets, and how its
// server ran.
type dbReport struct {
	backend
	// version is the database's ("MariaDB 10.11…", "SQLite 3.…").
	version string
	// setup describes the server's settings for this backend, for the report.
	setup string
	// ratios are the posts targets (cached list, list miss, 1 KiB add); infoRatios the
	// ceilings that include a principal read (MySQL only); httpBound the list miss against a
	// bare net/http server running the list's statements, and that server against the DB
	// ceiling (see serveCeiling).
	ratios, infoRatios, httpBound []ratio
	// preparedRatios are the add and the list miss against their DB ceilings with the
	// statements prepared once per connection, as the service runs them (not targets).
	preparedRatios []ratio
	// idleRSS and seededRSS are the server's, after start-up and after seeding.
	idleRSS, seededRSS int64
	// redisEnd is the Redis state the server reported at the end of the backend's run,
	// from its /metrics ("" without Redis).
	redisEnd string
}

// redisState is the run's use of a Redis server: its own key prefix, deleted at the end.
type redisState struct {
	client  rueidis.Client
	url     string // without credentials, for the report
	prefix  string
	version string
}

// openRedis checks that the Redis server at rawURL answers (the service would start
// degraded, reading every principal from the database, and the run would measure that
// without saying so) and returns the run's state on it, with prefix as its keys' prefix.
func openRedis(ctx context.Context, rawURL, prefix string) (*redisState, error) {
	opt, err := rueidis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("-redis-url: %w", err)
	}
	opt.DisableCache = true
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("redis at %s: %w", redactURL(rawURL), err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := client.Do(pingCtx, client.B().Ping().Build()).Error(); err != nil {
		client.Close()
		return nil, fmt.Errorf("redis at %s: %w", redactURL(rawURL), err)
	}
	rs := &redisState{client: client, url: redactURL(rawURL), prefix: prefix, version: "unknown"}
	if info, err := client.Do(pingCtx, client.B().Info().Section("server").Build()).ToString(); err == nil {
		for line := range strings.Lines(info) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
				rs.version = v
			}
		}
	}
	return rs, nil
}

// close deletes every key under the run's prefix (the service gives its keys a TTL, but a
// shared Redis should not keep a run's keys that long) and closes the client.
func (rs *redisState) close() {
	defer rs.client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	deleted := 0
	var cursor uint64
	for {
		entry, err := rs.client.Do(ctx, rs.client.B().Scan().Cursor(cursor).Match(rs.prefix+"*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			logf("redis: listing the run's keys: %v", err)
			return
		}
		if len(entry.Elements) > 0 {
			if err := rs.client.Do(ctx, rs.client.B().Unlink().Key(entry.Elements...).Build()).Error(); err != nil {
				logf("redis: deleting the run's keys: %v", err)
				return
			}
			deleted += len(entry.Elements)
		}
		if cursor = entry.Cursor; cursor == 0 {
			break
		}
	}
	logf("deleted %d Redis keys under %s", deleted, rs.prefix)
}

// redactURL drops the credentials of a URL, for logs and the report.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User("…")
	}
	return u.String()
}

// sqliteServerFile is the SQLite database the server runs on, in the run's temporary folder.
func (r *runner) sqliteServerFile() string {
	return filepath.Join(r.tmp, "sqlite", "postsvc.db")
}

// openSQLiteCeiling copies the server's SQLite database (seeded, migrated) to a file of the
// ceilings' own and opens it with the service's own adapter: the same driver
// (modernc.org/sqlite, pure Go), pragmas (WAL, busy_timeout, foreign keys), _txlock=immediate
// and pool bounds (gormstore.Open), so the ceiling measures the hardware and SQLite, not
// another configuration. The ceilings then issue their statements on the *sql.DB under it,
// without GORM. A copy rather than the server's file, so that the server stays the one
// process on its file, as the service's lock requires (gormstore.LockSQLite), and the
// ceilings' writes never go behind its back. sqliteCeilingFile is that copy.
func (r *runner) sqliteCeilingFile() string {
	return filepath.Join(r.tmp, "sqlite-ceiling", "ceiling.db")
}

// openSQLiteCeiling opens the ceilings' copy of the server's file (see sqliteCeilingFile).
func (r *runner) openSQLiteCeiling(ctx context.Context) (*sql.DB, func(), error) {
	srcFile := r.sqliteServerFile()
	dst := r.sqliteCeilingFile()
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return nil, nil, err
	}
	// A read of the server's file from another connection, which WAL allows at any time.
	src, closeSrc, err := gormstore.Open(config.Database{Driver: config.DriverSQLite, DSN: srcFile})
	if err != nil {
		return nil, nil, fmt.Errorf("open the server's SQLite file: %w", err)
	}
	raw, err := src.DB()
	if err == nil {
		_, err = raw.ExecContext(ctx, "VACUUM INTO ?", dst)
	}
	closeSrc()
	if err != nil {
		return nil, nil, fmt.Errorf("copy the server's SQLite file: %w", err)
	}
	db, cleanup, err := gormstore.Open(config.Database{
		Driver: config.DriverSQLite, DSN: dst,
		MaxOpenConns: r.poolSize, MaxIdleConns: r.poolSize, ConnMaxLifetime: 30 * time.Minute,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("open the ceilings' SQLite file: %w", err)
	}
	pool, err := db.DB()
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return pool, cleanup, nil
}

// serverMetrics are the figures of a server's /metrics the report uses.
type serverMetrics struct {
	ok                     bool
	principalHits, misses  int64
	redis                  bool
	redisUp                bool
	redisFailures, outages int64
}

// readMetrics reads the principal cache's and Redis's counters from the server at base.
func readMetrics(ctx context.Context, client *http.Client, base string) serverMetrics {
	var m serverMetrics
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return m
	}
	resp, err := client.Do(req)
	if err != nil {
		return m
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return m
	}
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		name, value, ok := strings.Cut(s.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		switch name {
		case "postsvc_principal_cache_hits_total":
			m.principalHits, m.ok = int64(f), true
		case "postsvc_principal_cache_misses_total":
			m.misses, m.ok = int64(f), true
		case "postsvc_redis_up":
			m.redis, m.redisUp = true, f == 1
		case "postsvc_redis_failures_total":
			m.redisFailures = int64(f)
		case "postsvc_redis_outages_total":
			m.outages = int64(f)
		}
	}
	if s.Err() != nil {
		m.ok = false
	}
	return m
}

// principalsNote says where a scenario's principals came from, from the servers' counters.
func principalsNote(r result) string {
	if !r.PrincipalsKnown {
		return "-"
	}
	total := r.PrincipalHits + r.PrincipalMisses
	if total == 0 {
		return "none read"
	}
	note := fmt.Sprintf("%.1f%% from memory (%d of %d)", 100*float64(r.PrincipalHits)/float64(total), r.PrincipalHits, total)
	if r.RedisFailures > 0 {
		// Why some were read: Redis calls failed or timed out, and the stamp board vouched
		// for nothing until Redis answered again.
		note += fmt.Sprintf("; %d Redis call(s) failed or timed out meanwhile", r.RedisFailures)
	}
	return note
}

// redisNote describes the Redis state a server reported at the end of its run.
func redisNote(m serverMetrics) string {
	switch {
	case !m.redis:
		return "the server reported no Redis state on /metrics"
	case m.redisUp && m.outages == 0:
		return fmt.Sprintf("up throughout (%d failed calls)", m.redisFailures)
	case m.redisUp:
		return fmt.Sprintf("up at the end, after %d outage(s) and %d failed calls: principals were read from the database meanwhile", m.outages, m.redisFailures)
	default:
		return fmt.Sprintf("DOWN at the end (%d outage(s), %d failed calls): principals were read from the database", m.outages, m.redisFailures)
	}
}
