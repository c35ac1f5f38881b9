package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/config"
)

// loadPassword is every seeded user's password.
const loadPassword = "correct horse battery staple"

// loadUser is a seeded account.
type loadUser struct {
	email, token, id, sessionID string
	loginBody                   []byte
	posts                       []string
}

// runner holds the state of one run.
type runner struct {
	opts   options
	root   string
	tmp    string
	runID  string
	bin    string
	server *process
	client *loadClient
	users  []*loadUser
	// be is the backend being measured, and dbr its part of the report.
	be  backend
	dbr *dbReport
	// db is the ceilings' own pool, configured like the service's: on the run's MySQL
	// database, or on a copy of the server's SQLite file (openSQLiteCeiling).
	db        *sql.DB
	serverDSN string
	// redis is the run's Redis state, nil without -redis-url.
	redis *redisState
	// principal is the authentication read of the informational DB ceilings (MySQL only).
	principal *principalReader
	// pprofAddr is the server's profiler address when -pprof-dir is set.
	pprofAddr string
	// serverLog is the -server-log file, closed when the run ends.
	serverLog *os.File
	// serviceDefaults are the settings the server runs with (config.Defaults).
	poolSize  int
	cacheMax  int64
	argon2    argon2Params
	rep       report
	texts     map[string][]byte
	createdMu sync.Mutex
	created   map[int][]string
}

// run performs the whole measurement and writes the report. It returns how many targets
// were missed.
func run(ctx context.Context, opts options) (int, error) {
	r := &runner{opts: opts, texts: map[string][]byte{}, created: map[int][]string{}}
	var err error
	if r.root, err = moduleRoot(); err != nil {
		return 0, err
	}
	if err := r.readServiceDefaults(); err != nil {
		return 0, err
	}
	if r.tmp, err = os.MkdirTemp("", "postsvc-load-"); err != nil {
		return 0, err
	}
	defer os.RemoveAll(r.tmp)
	if opts.serverLog != "" {
		if r.serverLog, err = os.Create(opts.serverLog); err != nil {
			return 0, fmt.Errorf("server log: %w", err)
		}
		defer r.serverLog.Close()
		logf("the servers' log goes to %s", opts.serverLog)
	}
	r.runID = randomHex(6)
	r.rep.started = time.Now().UTC()
	r.rep.ecgOnly = opts.ecgOnly
	r.rep.mediaOnly = opts.mediaOnly
	r.rep.postsOnly = opts.postsOnly
	r.rep.machine = describeMachine(ctx, r.root)

	if r.bin, err = r.serverBinary(ctx); err != nil {
		return 0, err
	}
	r.client = newLoadClient(max(opts.clients, opts.clients1MiB))
	defer r.client.CloseIdleConnections()
	switch {
	case opts.redisURL != "" && slices.Contains(opts.databases, dbMySQL):
		if r.redis, err = openRedis(ctx, opts.redisURL, "load:"+r.runID+":"); err != nil {
			return 0, err
		}
		defer r.redis.close()
		r.rep.machine.redis = fmt.Sprintf("Redis %s at %s, keys under the run's own prefix `%s` (deleted at the end)", r.redis.version, r.redis.url, r.redis.prefix)
		logf("the MySQL servers run with Redis %s at %s, prefix %s", r.redis.version, r.redis.url, r.redis.prefix)
	case opts.redisURL != "":
		r.rep.machine.redis = "not used: SQLite keeps principals in its one process's memory"
	case slices.Contains(opts.databases, dbMySQL):
		r.rep.machine.redis = "**none** (no -redis-url or TEST_REDIS_URL): the MySQL server read every request's principal from MySQL"
		logf("warning: no Redis (-redis-url or TEST_REDIS_URL): the MySQL server reads every principal from MySQL; the issue's targets are for MySQL with Redis")
	default:
		r.rep.machine.redis = "not used: SQLite keeps principals in its one process's memory"
	}
	for i, driver := range opts.databases {
		be := backend{driver: driver, redis: driver == dbMySQL && r.redis != nil}
		if err := r.runBackend(ctx, be, i == 0, i == len(opts.databases)-1); err != nil {
			return 0, err
		}
	}
	r.rep.finished = time.Now().UTC()
	return r.rep.write(r.opts)
}

// runBackend measures the service on one backend: a database of its own (a fresh MySQL
// database, dropped at the end, or a fresh SQLite file), a server on it, seeded, then the
// scenarios. first: the machine's background load is measured while this server idles.
// last: the memory figures follow this server, which is given time to settle at the end.
func (r *runner) runBackend(ctx context.Context, be backend, first, last bool) error {
	r.be = be
	r.dbr = &dbReport{backend: be}
	r.rep.databases = append(r.rep.databases, r.dbr)
	r.users, r.created, r.principal, r.db, r.rep.captured = nil, map[int][]string{}, nil, nil, capturedResponse{}
	logf("=== %s", be.label())
	switch be.driver {
	case dbMySQL:
		admin, serverDSN, drop, err := r.createDatabase(ctx)
		if err != nil {
			return err
		}
		// Deferred calls run last first: the server stops, then the database is dropped,
		// then the admin pool closes.
		defer admin.Close()
		defer drop()
		r.serverDSN = serverDSN
		if r.db, err = r.openCeilingPool(serverDSN); err != nil {
			return err
		}
		defer r.db.Close()
		r.principal = &principalReader{db: r.db}
		var v string
		if err := admin.QueryRowContext(ctx, "SELECT VERSION()").Scan(&v); err == nil {
			r.rep.machine.mysqlVersion, r.dbr.version = v, "MySQL-compatible server "+v
		}
		r.dbr.setup = fmt.Sprintf("go-sql-driver/mysql with the service's DSN settings, pool of %d", r.poolSize)
		if be.redis {
			r.dbr.setup += fmt.Sprintf("; principals from memory, stamps shared through Redis (prefix `%s`)", r.redis.prefix)
		} else {
			r.dbr.setup += "; no Redis: every authenticated request reads its principal from MySQL"
		}
	case dbSQLite:
		r.serverDSN = r.sqliteServerFile()
		r.dbr.setup = "modernc.org/sqlite (pure Go; GORM dialector libtnb/sqlite) through the service's adapter: WAL, busy_timeout 5 s, foreign keys, " +
			"BEGIN IMMEDIATE, pool of 4 (gormstore.Open); principals in the process's memory (stampboard.Local)"
	}
	if err := r.startServer(ctx); err != nil {
		return err
	}
	defer r.server.stop()

	// Idle: the server has migrated and answers, and has served nothing else yet. The
	// machine's load meanwhile is other tenants' (the figures are only as steady as it is).
	quiet, quietStart := startCPU(0), time.Now()
	busyBefore := coresBusy(ctx, quiet, quietStart, backgroundWindow)
	if err := ctx.Err(); err != nil {
		return err
	}
	if first {
		r.rep.backgroundBefore = busyBefore
		if r.rep.backgroundBefore > 0.2 {
			logf("warning: %.2f cores were busy before the load started; other processes will skew the figures", r.rep.backgroundBefore)
		}
	}
	idle, _, err := memStatus(r.server.pid())
	if err != nil {
		return err
	}
	r.dbr.idleRSS = idle
	logf("server idle RSS %s", mib(idle))
	if err := r.seed(ctx); err != nil {
		// The server logs every 5xx with its cause at warn, the level it runs at here.
		return fmt.Errorf("%w\nthe server's last log lines:\n%s", err, r.server.stderr.tail(20))
	}
	if be.driver == dbSQLite {
		pool, cleanup, err := r.openSQLiteCeiling(ctx)
		if err != nil {
			return err
		}
		defer cleanup()
		r.db = pool
		var v string
		if err := pool.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&v); err == nil {
			r.dbr.version = "SQLite " + v
			r.rep.machine.sqliteVersion = v
		}
	}
	if last {
		r.rep.idleRSS, r.rep.seededRSS = r.dbr.idleRSS, r.dbr.seededRSS
	}
	if err := r.scenarios(ctx); err != nil {
		return err
	}
	if be.redis {
		r.dbr.redisEnd = redisNote(readMetrics(ctx, metricsClient, r.server.base))
	}
	if last {
		r.settle(ctx)
	}
	r.server.stop()
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "load: "+format+"\n", args...)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// readServiceDefaults takes the settings the server will run with from config.Defaults, so
// the ceilings use the same pool size and hashing cost whatever the defaults become.
func (r *runner) readServiceDefaults() error {
	d := config.Defaults()
	ints := map[string]int64{}
	for _, key := range []string{"database.max_open_conns", "cache.posts_max_bytes", "auth.argon2_memory_kib", "auth.argon2_iterations", "auth.argon2_parallelism"} {
		n, err := strconv.ParseInt(fmt.Sprint(d[key]), 10, 64)
		if err != nil || n <= 0 {
			return fmt.Errorf("config.Defaults()[%q] = %v: not a positive integer", key, d[key])
		}
		ints[key] = n
	}
	r.poolSize = int(ints["database.max_open_conns"])
	r.cacheMax = ints["cache.posts_max_bytes"]
	r.argon2 = argon2Params{
		memoryKiB:   uint32(ints["auth.argon2_memory_kib"]), //nolint:gosec // G115: a small positive default
		iterations:  uint32(ints["auth.argon2_iterations"]), //nolint:gosec // G115: a small positive default
		parallelism: uint8(ints["auth.argon2_parallelism"]), //nolint:gosec // G115: a small positive default
	}
	return nil
}

// serverBinary returns -server, or builds ./cmd/server.
func (r *runner) serverBinary(ctx context.Context) (string, error) {
	if r.opts.server != "" {
		return filepath.Abs(r.opts.server)
	}
	bin := filepath.Join(r.tmp, "server")
	logf("building ./cmd/server")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/server") //nolint:gosec // G204: a path in the run's own temporary folder
	build.Dir = r.root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/server: %w", err)
	}
	return bin, nil
}

// createDatabase makes the run's own database and returns the admin pool, the server's DSN
// and the function that drops the database.
func (r *runner) createDatabase(ctx context.Context) (*sql.DB, string, func(), error) {
	cfg, err := mysqldriver.ParseDSN(r.opts.mysqlDSN)
	if err != nil {
		return nil, "", nil, fmt.Errorf("-mysql-dsn: %w", err)
	}
	admin, err := sql.Open("mysql", r.opts.mysqlDSN)
	if err != nil {
		return nil, "", nil, err
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := admin.PingContext(pingCtx); err != nil {
		_ = admin.Close()
		return nil, "", nil, fmt.Errorf("MySQL server of -mysql-dsn: %w", err)
	}
	name := "postsvc_load_" + r.runID
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		_ = admin.Close()
		return nil, "", nil, fmt.Errorf("create database: %w", err)
	}
	logf("created database %s", name)
	drop := func() {
		// The run's context may be cancelled by now; the drop must still happen.
		dropCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := admin.ExecContext(dropCtx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			logf("drop database %s: %v", name, err)
			return
		}
		logf("dropped database %s", name)
	}
	cfg.DBName = name
	return admin, cfg.FormatDSN(), drop, nil
}

// openCeilingPool opens database/sql on the run's database with the driver settings the
// service adds to every DSN (adapters/gormstore) and the service's pool size.
func (r *runner) openCeilingPool(dsn string) (*sql.DB, error) {
	return openPool(dsn, r.poolSize)
}

// openPool opens database/sql on dsn as the service's MySQL adapter does, with size
// connections at most.
func openPool(dsn string, size int) (*sql.DB, error) {
	// The service's own driver settings, so the ceilings talk to MySQL exactly as it does.
	mc, err := gormstore.MySQLConfig(dsn)
	if err != nil {
		return nil, err
	}
	connector, err := mysqldriver.NewConnector(mc)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(size)
	db.SetMaxIdleConns(size)
	db.SetConnMaxLifetime(30 * time.Minute)
	return db, nil
}

// startServer runs the server on a free loopback port against the backend's database, with
// the profiler on when -pprof-dir is set.
func (r *runner) startServer(ctx context.Context) error {
	addr, err := freeLoopbackAddr(ctx)
	if err != nil {
		return err
	}
	env := r.serverEnvironment(addr)
	r.pprofAddr = ""
	if r.opts.pprofDir != "" {
		if r.pprofAddr, err = freeLoopbackAddr(ctx); err != nil {
			return err
		}
		env = append(env, "APP_HTTP_PPROF_ADDR="+r.pprofAddr)
	}
	env = append(env, r.opts.serverEnv...)
	if len(r.opts.serverEnv) > 0 {
		logf("server environment adds %s", r.opts.serverEnv.String())
	}
	logf("starting the server on %s (%s)", addr, r.be.label())
	r.server, err = r.startServerProcess(ctx, "server", env, addr)
	return err
}

// startServerProcess starts the server binary with env, serving on addr.
func (r *runner) startServerProcess(ctx context.Context, name string, env []string, addr string) (*process, error) {
	var logTo io.Writer
	if r.serverLog != nil {
		logTo = r.serverLog
	}
	return startProcess(ctx, name, r.bin, nil, env, "http://"+addr, "/readyz", logTo)
}

// serverEnvironment is the runner's own settings of a server of the current backend serving
// on addr (before -server-env).
func (r *runner) serverEnvironment(addr string) []string {
	data := filepath.Join(r.tmp, "data")
	if r.be.driver == dbSQLite {
		data = filepath.Join(r.tmp, "data-sqlite")
	}
	env := []string{
		"APP_ENV=development",
		"APP_DATA_DIR=" + data,
		"APP_HTTP_ADDR=" + addr,
		"APP_LOG_LEVEL=warn",
		"APP_DATABASE_DRIVER=" + r.be.driver,
		"APP_DATABASE_DSN=" + r.serverDSN,
		// Logins in the run never fail, but nothing should throttle them if one did; every
		// signup (the seeding, the signup scenario) comes from this one address.
		"APP_THROTTLE_ACCOUNT_FAILURES=1000000",
		"APP_THROTTLE_ADDR_FAILURES=1000000",
		"APP_THROTTLE_SIGNUP_ATTEMPTS=1000000",
		// One argon2id run per core: more cannot go faster, fewer would leave a core idle.
		"APP_AUTH_MAX_CONCURRENT_HASHES=" + strconv.Itoa(numCPU()),
		// The login and signup scenarios measure hashing throughput with every client on this
		// one address, so that address may use every slot and the queue must hold them all
		// instead of shedding; the flood scenario (flood.go) runs a server of its own with
		// the default bounds.
		"APP_AUTH_MAX_HASHES_PER_CLIENT=" + strconv.Itoa(numCPU()),
		"APP_AUTH_MAX_QUEUED_HASHES=1000000",
		"APP_AUTH_MAX_QUEUED_PER_CLIENT=1000000",
		// The seeded tokens must outlive the run.
		"APP_AUTH_ACCESS_TOKEN_TTL=2h",
		// The ECG scenarios upload without deleting, the first user most (ecgIdle, then a
		// share of every turn), with 64 MiB bodies under -ecg-large-uploads: a long run
		// would pass the default quota of 1 GiB a user, and measure refusals, not uploads.
		"APP_ECG_QUOTA_BYTES=" + strconv.FormatInt(runECGQuotaBytes, 10),
	}
	return append(env, r.redisEnvironment("")...)
}

// runECGQuotaBytes is the ECG quota of the run's servers: 1 PiB a user, which no run reaches.
const runECGQuotaBytes int64 = 1 << 50

// redisEnvironment is the Redis settings of a MySQL server of the run: none without Redis
// or on SQLite. Every server of the backend shares the run's prefix; sub, when not empty,
// gives a server a prefix of its own under it (the flood scenario's, whose throttle state
// must not meet the main server's).
func (r *runner) redisEnvironment(sub string) []string {
	if r.redis == nil || !r.be.redis {
		return nil
	}
	return []string{"APP_REDIS_URL=" + r.opts.redisURL, "APP_REDIS_PREFIX=" + r.redis.prefix + sub}
}

// postBody returns a JSON body {"text": <n bytes of ASCII prose>}, built once per size.
func (r *runner) postBody(n int) []byte {
	key := strconv.Itoa(n)
	if b, ok := r.texts[key]; ok {
		return b
	}
	b, _ := json.Marshal(map[string]string{"text": prose(n)})
	r.texts[key] = b
	return b
}

func prose(n int) string {
	const words = "the quick brown fox jumps over the lazy dog while five boxing wizards jump quickly "
	return strings.Repeat(words, n/len(words)+1)[:n]
}

// seed signs up the users and adds their posts through the API.
func (r *runner) seed(ctx context.Context) error {
	start := time.Now()
	var err error
	if r.users, err = r.signupUsers(ctx, "seed", r.opts.users); err != nil {
		return err
	}
	if err := r.seedPosts(ctx, "seed posts", r.users, r.opts.posts, r.postBody(r.opts.postBytes), r.opts.clients); err != nil {
		return err
	}
	total := len(r.users) * r.opts.posts
	rss, _, _ := memStatus(r.server.pid())
	r.dbr.seededRSS = rss
	logf("seeded %d users and %d posts in %s; server RSS %s", len(r.users), total, time.Since(start).Round(time.Millisecond), mib(rss))
	return nil
}

// seedPosts adds perUser posts with body to each of users, from clients at once, and keeps
// their ids on the users.
func (r *runner) seedPosts(ctx context.Context, name string, users []*loadUser, perUser int, body []byte, clients int) error {
	var mu sync.Mutex
	total := int64(len(users) * perUser)
	res := drive(ctx, name, bounds{clients: clients, maxRequests: total, duration: 10 * time.Minute}, 0,
		func(ctx context.Context, w *worker, seq int64) (bool, error) {
			u := users[seq%int64(len(users))]
			id, err := r.addPost(ctx, w, u, body)
			if err != nil {
				return false, err
			}
			mu.Lock()
			u.posts = append(u.posts, id)
			mu.Unlock()
			return false, nil
		})
	return seedErr(res, total)
}

// signupUsers signs up n accounts named after prefix and returns them with their tokens.
func (r *runner) signupUsers(ctx context.Context, prefix string, n int) ([]*loadUser, error) {
	users := make([]*loadUser, n)
	for i := range users {
		email := fmt.Sprintf("%s-%s-%d@load.example.io", prefix, r.runID, i)
		body, _ := json.Marshal(map[string]string{"email": email, "password": loadPassword})
		users[i] = &loadUser{email: email, loginBody: body}
	}
	// Signups queue for the server's hashing slots (one per core); a few clients keep them
	// busy without queueing anyone towards the request timeout.
	res := drive(ctx, prefix+" users", bounds{clients: min(2*numCPU(), n), maxRequests: int64(n), duration: 10 * time.Minute}, 0,
		func(ctx context.Context, w *worker, seq int64) (bool, error) {
			u := users[seq]
			resp, err := call(ctx, r.client, w, http.MethodPost, r.server.base+"/api/v1/auth/signup", "", u.loginBody)
			if err != nil {
				return false, err
			}
			if err := expect(resp, w, http.StatusCreated); err != nil {
				return false, err
			}
			var out struct {
				AccessToken string `json:"access_token"`
				User        struct {
					ID string `json:"id"`
				} `json:"user"`
			}
			if err := json.Unmarshal(w.buf.Bytes(), &out); err != nil {
				return false, err
			}
			u.token, u.id = out.AccessToken, out.User.ID
			u.sessionID, err = sessionIDOf(out.AccessToken)
			return false, err
		})
	return users, seedErr(res, int64(n))
}

func seedErr(res result, want int64) error {
	if res.Errors > 0 || res.Requests != want {
		return fmt.Errorf("%s: %d of %d done, %d errors: %s", res.Name, res.Requests, want, res.Errors, res.FirstError)
	}
	return nil
}

// addPost adds a post and returns its id.
func (r *runner) addPost(ctx context.Context, w *worker, u *loadUser, body []byte) (string, error) {
	return r.addPostAt(ctx, r.server.base, w, u, body)
}

// addPostAt adds a post through the server at base and returns its id.
func (r *runner) addPostAt(ctx context.Context, base string, w *worker, u *loadUser, body []byte) (string, error) {
	resp, err := call(ctx, r.client, w, http.MethodPost, base+"/api/v1/posts", u.token, body)
	if err != nil {
		return "", err
	}
	if err := expect(resp, w, http.StatusCreated); err != nil {
		return "", err
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(w.buf.Bytes(), &out); err != nil || out.ID == "" {
		return "", fmt.Errorf("add post answered %.200s: %w", w.buf.String(), err)
	}
	return out.ID, nil
}

// user is the account worker w acts as.
func (r *runner) user(w *worker) *loadUser { return r.users[w.id%len(r.users)] }

// bounds of an ordinary scenario.
func (r *runner) bounds() bounds {
	return bounds{clients: r.opts.clients, maxRequests: r.opts.requests, duration: r.opts.duration}
}

// record logs a result and keeps it for the report.
func (r *runner) record(res result, ceiling bool) result {
	logf("%-34s %6.0f %s/s  p50 %-9s p99 %-9s max %-9s errors %d, CPU/op %s, cores busy %s%s", res.Name, res.Rate(), res.Unit,
		roundDur(res.P50), roundDur(res.P99), roundDur(res.Max), res.Errors, cpuSplit(res), busy(res), rssNote(res.PeakRSS))
	if res.FirstError != "" {
		logf("  first error: %s", res.FirstError)
	}
	if ceiling {
		r.rep.ceilings = append(r.rep.ceilings, res)
	} else {
		r.rep.scenarios = append(r.rep.scenarios, res)
	}
	return res
}

func rssNote(b int64) string {
	if b == 0 {
		return ""
	}
	return ", peak RSS " + mib(b)
}

// listOp is GET /api/v1/posts (first page) against base, answered from the cache: the same
// code drives the server and the HTTP ceiling.
func (r *runner) listOp(base string) op {
	return func(ctx context.Context, w *worker, _ int64) (bool, error) {
		resp, err := call(ctx, r.client, w, http.MethodGet, base+"/api/v1/posts", r.user(w).token, nil)
		if err != nil {
			return false, err
		}
		if err := expect(resp, w, http.StatusOK); err != nil {
			return false, err
		}
		return resp.header.Get("X-Cache") != "HIT", nil
	}
}

// driveServer runs a scenario against the server, recorded with perf when -perf-dir is set
// and profiled with pprof when -pprof-dir is set.
func (r *runner) driveServer(ctx context.Context, name string, b bounds, fn op) result {
	return r.driveServers(ctx, name, b, []*process{r.server}, fn)
}

// driveServers runs a scenario against servers (the main one first, which alone is recorded
// with perf and profiled), measuring their CPU time and peak RSS and counting, from their
// /metrics, the principals they served from memory and those they read.
func (r *runner) driveServers(ctx context.Context, name string, b bounds, servers []*process, fn op) result {
	pids := make([]int, len(servers))
	before := make([]serverMetrics, len(servers))
	for i, s := range servers {
		pids[i] = s.pid()
		before[i] = readMetrics(ctx, metricsClient, s.base)
	}
	stopPerf := r.startPerf(ctx, name)
	waitProfile := r.startCPUProfile(ctx, name, b.duration)
	res := driveAll(ctx, name, b, pids, fn)
	stopPerf()
	waitProfile()
	res.PrincipalsKnown = true
	for i, s := range servers {
		after := readMetrics(ctx, metricsClient, s.base)
		if !before[i].ok || !after.ok {
			res.PrincipalsKnown = false
			continue
		}
		res.PrincipalHits += after.principalHits - before[i].principalHits
		res.PrincipalMisses += after.misses - before[i].misses
		res.RedisFailures += after.redisFailures - before[i].redisFailures
	}
	if !res.PrincipalsKnown {
		res.PrincipalHits, res.PrincipalMisses, res.RedisFailures = 0, 0, 0
	}
	return res
}

// metricsClient reads the servers' /metrics, apart from the scenarios' clients.
var metricsClient = &http.Client{Timeout: 5 * time.Second}

// profileFile returns dir/<scenario><ext>, numbered when a scenario run in turns already
// wrote one.
func profileFile(dir, name, ext string) (string, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	stem := filepath.Join(dir, strings.NewReplacer(" ", "-", "(", "", ")", "", ":", "", "/", "-per-", string(filepath.Separator), "-").Replace(name))
	file := stem + ext
	for i := 2; fileExists(file); i++ {
		file = fmt.Sprintf("%s.%d%s", stem, i, ext)
	}
	return file, nil
}

// startPerf starts "perf record" on the server and returns the function that stops it.
func (r *runner) startPerf(ctx context.Context, name string) func() {
	if r.opts.perfDir == "" {
		return func() {}
	}
	file, err := profileFile(r.opts.perfDir, name, ".data")
	if err != nil {
		logf("perf: %v", err)
		return func() {}
	}
	cmd := exec.CommandContext(ctx, "perf", "record", "-F", "499", "-g", "-o", file, "-p", strconv.Itoa(r.server.pid())) //nolint:gosec // G204: fixed program, our own arguments
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		logf("perf: %v", err)
		return func() {}
	}
	return func() {
		// perf writes its file when interrupted.
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}
}

// startCPUProfile asks the server's profiler for a CPU profile as long as the turn may last
// (whole seconds, at least one) and returns the function that waits for it and saves it.
func (r *runner) startCPUProfile(ctx context.Context, name string, d time.Duration) func() {
	if r.pprofAddr == "" {
		return func() {}
	}
	file, err := profileFile(r.opts.pprofDir, name, ".pprof")
	if err != nil {
		logf("pprof: %v", err)
		return func() {}
	}
	seconds := max(1, int((d+time.Second-1)/time.Second))
	done := make(chan struct{})
	go func() {
		defer close(done)
		u := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", r.pprofAddr, seconds)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			logf("pprof: %v", err)
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			logf("pprof: %v", err)
			return
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d: %.200s", resp.StatusCode, data)
		}
		if err == nil {
			err = os.WriteFile(file, data, 0o600)
		}
		if err != nil {
			logf("pprof %s: %v", name, err)
		}
	}()
	return func() { <-done }
}

// slice is one turn of a paired measurement: bounds of its own, a share of the scenario's.
type slice func(b bounds) result

// pair measures a scenario and the ceilings it is compared with in alternating slices:
// -rounds turns of each, every turn -duration/-rounds long and at most -requests/-rounds
// operations. Whatever else the machine does then weighs on both alike. It returns the merged
// results, the scenario's first.
func (r *runner) pair(ctx context.Context, clients int, runs ...slice) []result {
	rounds := r.opts.rounds
	per := max(r.opts.requests/int64(rounds), 1)
	parts := make([][]result, len(runs))
	for i := range rounds {
		b := bounds{clients: clients, maxRequests: per, duration: r.opts.duration / time.Duration(rounds), firstSeq: int64(i) * per}
		for j, run := range runs {
			r.quiet(ctx)
			parts[j] = append(parts[j], run(b))
		}
		if ctx.Err() != nil {
			break
		}
	}
	out := make([]result, len(runs))
	for j := range runs {
		out[j] = merge(parts[j]...)
	}
	return out
}

// quiet waits for a quiet machine before a turn (waitQuiet), and keeps the longest wait and
// the turns that started on a busy machine for the report.
func (r *runner) quiet(ctx context.Context) {
	waited, ok := waitQuiet(ctx)
	r.rep.quietWaitMax = max(r.rep.quietWaitMax, waited)
	if !ok && ctx.Err() == nil {
		r.rep.quietMissed++
		logf("warning: the machine stayed busy for %s before a turn; it starts anyway", waited.Round(time.Millisecond))
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// scenarios runs every scenario of the backend, those that have a ceiling in turns with it,
// so both are measured under the same conditions. SQLite runs the posts scenarios only, as
// -posts-only does.
func (r *runner) scenarios(ctx context.Context) error {
	if r.opts.ecgOnly || r.opts.mediaOnly {
		if r.opts.ecgOnly {
			if err := r.ecgScenarios(ctx); err != nil {
				return err
			}
		}
		if r.opts.mediaOnly {
			return r.mediaScenarios(ctx)
		}
		return ctx.Err()
	}
	if err := r.postsScenarios(ctx); err != nil {
		return err
	}
	if r.opts.instances > 1 && r.be.driver == dbMySQL {
		if err := r.instancesScenarios(ctx); err != nil {
			return err
		}
	}
	if r.opts.postsOnly || r.be.driver != dbMySQL {
		return ctx.Err()
	}
	base := r.server.base
	clients := r.opts.clients

	// Login with the right password, in turns with raw verifications on every core.
	loginOp := func(ctx context.Context, w *worker, _ int64) (bool, error) {
		resp, err := call(ctx, r.client, w, http.MethodPost, base+"/api/v1/auth/login", "", r.user(w).loginBody)
		if err != nil {
			return false, err
		}
		return false, expect(resp, w, http.StatusOK)
	}
	got := r.pair(ctx, clients,
		func(b bounds) result { return r.driveServer(ctx, "login", b, loginOp) },
		func(b bounds) result { return hashCeiling(ctx, r.argon2, b) })
	login, hashCeil := r.record(got[0], false), r.record(got[1], true)
	r.rep.ratios = append(r.rep.ratios, ratio{label: r.be.label() + ": login / hashing ceiling", short: "LOGIN", scenario: login, ceiling: hashCeil, target: 0.8})

	// Signup of new accounts.
	r.record(r.driveServer(ctx, "signup", r.bounds(), func(ctx context.Context, w *worker, seq int64) (bool, error) {
		body, _ := json.Marshal(map[string]string{"email": fmt.Sprintf("signup-%s-%d@load.example.io", r.runID, seq), "password": loadPassword})
		resp, err := call(ctx, r.client, w, http.MethodPost, base+"/api/v1/auth/signup", "", body)
		if err != nil {
			return false, err
		}
		return false, expect(resp, w, http.StatusCreated)
	}), false)

	// Add 1 MiB posts, the largest the contract allows, from many clients at once: the
	// memory scenario.
	body1MiB := r.postBody(1 << 20)
	big := bounds{clients: r.opts.clients1MiB, maxRequests: r.opts.requests1MiB, duration: r.opts.duration}
	add1MiB := r.record(r.driveServer(ctx, "add 1 MiB post", big, func(ctx context.Context, w *worker, _ int64) (bool, error) {
		resp, err := call(ctx, r.client, w, http.MethodPost, base+"/api/v1/posts", r.user(w).token, body1MiB)
		if err != nil {
			return false, err
		}
		return false, expect(resp, w, http.StatusCreated)
	}), false)
	r.rep.peak1MiB = add1MiB.PeakRSS
	r.rep.ran1MiB = true
	if err := r.listLargePages(ctx); err != nil {
		return err
	}
	if err := r.flood(ctx); err != nil {
		return err
	}
	// Last, so that the analyses and the gigabytes the ECG uploads leave in the database
	// weigh on no other scenario.
	if err := r.ecgScenarios(ctx); err != nil {
		return err
	}
	// The image uploads leave their thumbnails made before they end (media.go).
	if err := r.mediaScenarios(ctx); err != nil {
		return err
	}
	return ctx.Err()
}

// name is a scenario's or ceiling's name as the report gives it: prefixed by the backend
// when that is not MySQL.
func (r *runner) name(s string) string { return r.be.namePrefix() + s }

// postsScenarios runs the posts scenarios on the current backend: list (cache hit) in turns
// with the HTTP ceiling, list (cache miss) and add 1 KiB in turns with their DB ceilings, get
// one and delete; and adds the backend's three posts targets to the report.
func (r *runner) postsScenarios(ctx context.Context) error {
	base := r.server.base
	clients := r.opts.clients
	mysql := r.be.driver == dbMySQL
	st := r.be.statements()
	// The targets' DB ceilings pass their statements as text; the informational "prepared"
	// ones prepare them once per connection, as the service does (see issuer).
	plain := textIssuer(r.db)
	prepared, err := preparedIssuer(ctx, r.db, st.all()...)
	if err != nil {
		return err
	}

	// List, cache hit. Each user's first page is loaded once, then every request is a hit.
	if err := r.warmLists(ctx, []*process{r.server}); err != nil {
		return err
	}
	w := &worker{}
	resp, err := call(ctx, r.client, w, http.MethodGet, base+"/api/v1/posts", r.users[0].token, nil)
	if err != nil {
		return err
	}
	r.rep.captured = capture(resp, w.buf.Bytes())
	ceiling, err := startHTTPCeiling(ctx, r.tmp, r.rep.captured, "", 0)
	if err != nil {
		return err
	}
	defer ceiling.stop()
	turns := []slice{
		func(b bounds) result { return r.driveServer(ctx, r.name("list (cache hit)"), b, r.listOp(base)) },
		func(b bounds) result {
			return drive(ctx, r.name("HTTP ceiling (bare net/http)"), b, ceiling.pid(), r.listOp(ceiling.base))
		},
	}
	// The informational ceiling that reads the principal from MySQL first (MySQL only).
	if mysql {
		withRead, err := startHTTPCeiling(ctx, r.tmp, r.rep.captured, r.serverDSN, r.poolSize)
		if err != nil {
			return err
		}
		defer withRead.stop()
		turns = append(turns, func(b bounds) result {
			return drive(ctx, "HTTP info: bare net/http + principal read", b, withRead.pid(), r.listOp(withRead.base))
		})
	}
	got := r.pair(ctx, clients, turns...)
	ceiling.stop()
	listHit, httpCeiling := r.record(got[0], false), r.record(got[1], true)
	var httpRead result
	if mysql {
		httpRead = r.record(got[2], true)
	}

	// List, cache miss: every request names a cursor no earlier request used (see futureID),
	// so its cache key is new and the page is read from the database; the rows are the first
	// page's.
	missOp := func(ctx context.Context, w *worker, seq int64) (bool, error) {
		cursor := base64.RawURLEncoding.EncodeToString([]byte(futureID(seq)))
		resp, err := call(ctx, r.client, w, http.MethodGet, base+"/api/v1/posts?cursor="+cursor, r.user(w).token, nil)
		if err != nil {
			return false, err
		}
		if err := expect(resp, w, http.StatusOK); err != nil {
			return false, err
		}
		return resp.header.Get("X-Cache") != "MISS", nil
	}
	// For information, the same requests against a bare net/http server that runs the list's
	// statements, as the DB ceiling does, before answering the captured page: what HTTP alone
	// leaves of the DB ceiling, with no routing, authentication, cache or encoding.
	listDSN := r.serverDSN
	if !mysql {
		// A copy of its own: SQLite shares a file between processes through file locks, which
		// a process alone on its file (the server, the in-process ceilings) does not pay.
		listDSN = filepath.Join(r.tmp, "sqlite-list-ceiling", "ceiling.db")
		if err := os.MkdirAll(filepath.Dir(listDSN), 0o750); err != nil {
			return err
		}
		if _, err := r.db.ExecContext(ctx, "VACUUM INTO ?", listDSN); err != nil {
			return fmt.Errorf("copy the SQLite file for the list's HTTP ceiling: %w", err)
		}
	}
	listCeiling, err := startListCeiling(ctx, r.tmp, r.rep.captured, r.be.driver, listDSN, r.poolSize)
	if err != nil {
		return err
	}
	defer listCeiling.stop()
	listCeilingOp := func(ctx context.Context, w *worker, seq int64) (bool, error) {
		cursor := base64.RawURLEncoding.EncodeToString([]byte(futureID(seq)))
		resp, err := call(ctx, r.client, w, http.MethodGet, listCeiling.base+"/api/v1/posts?cursor="+cursor, r.user(w).token, nil)
		if err != nil {
			return false, err
		}
		return false, expect(resp, w, http.StatusOK)
	}
	turns = []slice{
		func(b bounds) result { return r.driveServer(ctx, r.name("list (cache miss)"), b, missOp) },
		func(b bounds) result {
			return withUnit(drive(ctx, r.name("DB ceiling: list SELECT"), b, 0, selectCeiling(plain, st, r.users, 20, nil)), "query")
		},
		func(b bounds) result {
			return drive(ctx, r.name("HTTP info: bare net/http + list SELECT"), b, listCeiling.pid(), listCeilingOp)
		},
		func(b bounds) result {
			return withUnit(drive(ctx, r.name("DB info: list SELECT, prepared"), b, 0, selectCeiling(prepared, st, r.users, 20, nil)), "query")
		},
	}
	if mysql {
		turns = append(turns, func(b bounds) result {
			return withUnit(drive(ctx, "DB info: principal + list SELECT", b, 0, selectCeiling(plain, st, r.users, 20, r.principal)), "query")
		})
	}
	got = r.pair(ctx, clients, turns...)
	listCeiling.stop()
	listMiss, selectCeil, listHTTP, selectPrepared := r.record(got[0], false), r.record(got[1], true), r.record(got[2], true), r.record(got[3], true)
	var selectRead result
	if mysql {
		selectRead = r.record(got[4], true)
	}
	r.dbr.httpBound = []ratio{
		{label: "list miss / bare net/http + list SELECT", scenario: listMiss, ceiling: listHTTP},
		{label: "bare net/http + list SELECT / DB select ceiling (a bare HTTP service doing only the list's work)", scenario: listHTTP, ceiling: selectCeil},
	}

	// Get one of the user's seeded posts.
	r.record(r.driveServer(ctx, r.name("get one"), r.bounds(), func(ctx context.Context, w *worker, seq int64) (bool, error) {
		u := r.user(w)
		id := u.posts[int(seq)%len(u.posts)]
		resp, err := call(ctx, r.client, w, http.MethodGet, base+"/api/v1/posts/"+url.PathEscape(id), u.token, nil)
		if err != nil {
			return false, err
		}
		return false, expect(resp, w, http.StatusOK)
	}), false)

	// Add 1 KiB posts; their ids feed the delete scenario.
	body1KiB := r.postBody(1 << 10)
	addOp := func(ctx context.Context, w *worker, _ int64) (bool, error) {
		id, err := r.addPost(ctx, w, r.user(w), body1KiB)
		if err != nil {
			return false, err
		}
		r.createdMu.Lock()
		r.created[w.id] = append(r.created[w.id], id)
		r.createdMu.Unlock()
		return false, nil
	}
	turns = []slice{
		func(b bounds) result { return r.driveServer(ctx, r.name("add 1 KiB post"), b, addOp) },
		func(b bounds) result {
			return withUnit(drive(ctx, r.name("DB ceiling: add-post transaction"), b, 0, insertCeiling(plain, st, r.users, prose(1<<10), nil)), "tx")
		},
		func(b bounds) result {
			return withUnit(drive(ctx, r.name("DB info: add-post transaction, prepared"), b, 0, insertCeiling(prepared, st, r.users, prose(1<<10), nil)), "tx")
		},
	}
	if mysql {
		turns = append(turns, func(b bounds) result {
			return withUnit(drive(ctx, "DB info: principal + add-post tx", b, 0, insertCeiling(plain, st, r.users, prose(1<<10), r.principal)), "tx")
		})
	}
	got = r.pair(ctx, clients, turns...)
	add1KiB, insertCeil, insertPrepared := r.record(got[0], false), r.record(got[1], true), r.record(got[2], true)
	var insertRead result
	if mysql {
		insertRead = r.record(got[3], true)
	}
	r.dbr.preparedRatios = []ratio{
		{label: "add 1 KiB / add-post transaction, prepared", scenario: add1KiB, ceiling: insertPrepared},
		{label: "list miss / list SELECT, prepared", scenario: listMiss, ceiling: selectPrepared},
	}

	// Delete the posts just added, each worker its own (so as its own user).
	r.record(r.driveServer(ctx, r.name("delete"), r.bounds(), func(ctx context.Context, w *worker, _ int64) (bool, error) {
		r.createdMu.Lock()
		ids := r.created[w.id]
		if len(ids) == 0 {
			r.createdMu.Unlock()
			return false, errExhausted
		}
		id := ids[len(ids)-1]
		r.created[w.id] = ids[:len(ids)-1]
		r.createdMu.Unlock()
		resp, err := call(ctx, r.client, w, http.MethodDelete, base+"/api/v1/posts/"+url.PathEscape(id), r.user(w).token, nil)
		if err != nil {
			return false, err
		}
		return false, expect(resp, w, http.StatusNoContent)
	}), false)

	label := r.be.label() + ": "
	short := map[string][3]string{dbMySQL: {"MYSQL HIT", "MYSQL ADD", "MYSQL MISS"}, dbSQLite: {"SQLITE HIT", "SQLITE ADD", "SQLITE MISS"}}[r.be.driver]
	r.dbr.ratios = []ratio{
		{label: label + "cached list / HTTP ceiling", short: short[0], scenario: listHit, ceiling: httpCeiling, target: 0.6},
		{label: label + "add 1 KiB / DB insert ceiling", short: short[1], scenario: add1KiB, ceiling: insertCeil, target: 0.7},
		{label: label + "list miss / DB select ceiling", short: short[2], scenario: listMiss, ceiling: selectCeil, target: 0.7},
	}
	r.rep.ratios = append(r.rep.ratios, r.dbr.ratios...)
	if mysql {
		r.dbr.infoRatios = []ratio{
			{label: "cached list / bare net/http + principal read", scenario: listHit, ceiling: httpRead},
			{label: "add 1 KiB / principal read + add-post transaction", scenario: add1KiB, ceiling: insertRead},
			{label: "list miss / principal read + list SELECT", scenario: listMiss, ceiling: selectRead},
		}
	}
	return ctx.Err()
}

// warmLists loads each user's first page once from every one of servers, so that every
// later request for it is a cache hit, and checks that one is.
func (r *runner) warmLists(ctx context.Context, servers []*process) error {
	n := int64(len(r.users) * len(servers))
	warm := drive(ctx, "warm cache", bounds{clients: r.opts.clients, maxRequests: n, duration: time.Minute}, 0,
		func(ctx context.Context, w *worker, seq int64) (bool, error) {
			s := servers[seq/int64(len(r.users))]
			resp, err := call(ctx, r.client, w, http.MethodGet, s.base+"/api/v1/posts", r.users[seq%int64(len(r.users))].token, nil)
			if err != nil {
				return false, err
			}
			return false, expect(resp, w, http.StatusOK)
		})
	if err := seedErr(warm, n); err != nil {
		return err
	}
	for _, s := range servers {
		w := &worker{}
		resp, err := call(ctx, r.client, w, http.MethodGet, s.base+"/api/v1/posts", r.users[0].token, nil)
		if err != nil {
			return err
		}
		if resp.status != http.StatusOK || resp.header.Get("X-Cache") != "HIT" {
			return fmt.Errorf("the list from %s after warming was %d with X-Cache %q, want a 200 HIT", s.base, resp.status, resp.header.Get("X-Cache"))
		}
	}
	return nil
}

func withUnit(res result, unit string) result {
	res.Unit = unit
	return res
}

// settle waits, after the load, for the server's RSS to come back near its idle level: at
// most its idle RSS plus the post cache's byte budget (pages the server may rightly keep for
// their TTL) plus 32 MiB. It samples once a second for up to -settle.
func (r *runner) settle(ctx context.Context) {
	r.rep.settleLimit = r.rep.idleRSS + r.cacheMax + 32<<20
	r.rep.cacheMax = r.cacheMax
	start := time.Now()
	quiet := startCPU(0)
	defer func() { r.rep.backgroundAfter = coresBusy(ctx, quiet, start, backgroundWindow) }()
	logf("waiting up to %s for the server's RSS to fall to %s", r.opts.settle, mib(r.rep.settleLimit))
	for {
		rss, _, err := memStatus(r.server.pid())
		if err != nil {
			logf("reading the server's RSS: %v", err)
			return
		}
		waited := time.Since(start)
		if r.rep.rssAfter10s == 0 && waited >= 10*time.Second {
			r.rep.rssAfter10s = rss
		}
		r.rep.settledRSS, r.rep.settleWait = rss, waited
		if rss <= r.rep.settleLimit || waited >= r.opts.settle || ctx.Err() != nil {
			logf("server RSS %s after %s", mib(rss), waited.Round(time.Second))
			return
		}
		time.Sleep(time.Second)
	}
}
