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
	server *process
	client *http.Client
	users  []*loadUser
	// db is the ceilings' own pool on the run's database, configured like the service's.
	db        *sql.DB
	serverDSN string
	// principal is the authentication read of the informational DB ceilings.
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
	defer func() {
		if r.serverLog != nil {
			_ = r.serverLog.Close()
		}
	}()
	r.runID = randomHex(6)
	r.rep.started = time.Now().UTC()
	r.rep.ecgOnly = opts.ecgOnly
	r.rep.mediaOnly = opts.mediaOnly

	bin, err := r.serverBinary(ctx)
	if err != nil {
		return 0, err
	}
	admin, serverDSN, drop, err := r.createDatabase(ctx)
	if err != nil {
		return 0, err
	}
	// Deferred calls run last first: the database is dropped before the admin pool closes.
	defer admin.Close()
	defer drop()
	r.serverDSN = serverDSN
	if r.db, err = r.openCeilingPool(serverDSN); err != nil {
		return 0, err
	}
	defer r.db.Close()
	r.principal = &principalReader{db: r.db}
	r.rep.machine = describeMachine(ctx, r.root, admin)

	if err := r.startServer(ctx, bin, serverDSN); err != nil {
		return 0, err
	}
	defer r.server.stop()
	r.client = httpClient(max(opts.clients, opts.clients1MiB))
	defer r.client.CloseIdleConnections()

	// Idle: the server has migrated and answers, and has served nothing else yet. The
	// machine's load meanwhile is other tenants' (the figures are only as steady as it is).
	quiet := startCPU(0)
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(3 * time.Second):
	}
	_, _, busyBefore := quiet.finish()
	r.rep.backgroundBefore = busyBefore.Seconds() / 3
	if r.rep.backgroundBefore > 0.2 {
		logf("warning: %.2f cores were busy before the load started; other processes will skew the figures", r.rep.backgroundBefore)
	}
	if r.rep.idleRSS, _, err = memStatus(r.server.pid()); err != nil {
		return 0, err
	}
	logf("server idle RSS %s", mib(r.rep.idleRSS))
	if err := r.seed(ctx); err != nil {
		return 0, err
	}
	if err := r.scenarios(ctx); err != nil {
		return 0, err
	}
	r.settle(ctx)
	r.server.stop()
	r.rep.finished = time.Now().UTC()
	return r.rep.write(r.opts)
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

// startServer runs the binary on a free loopback port against the run's database.
func (r *runner) startServer(ctx context.Context, bin, dsn string) error {
	addr, err := freeLoopbackAddr(ctx)
	if err != nil {
		return err
	}
	env := []string{
		"APP_ENV=development",
		"APP_DATA_DIR=" + filepath.Join(r.tmp, "data"),
		"APP_HTTP_ADDR=" + addr,
		"APP_LOG_LEVEL=warn",
		"APP_DATABASE_DRIVER=mysql",
		"APP_DATABASE_DSN=" + dsn,
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
	}
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
	logf("starting the server on %s", addr)
	var logTo io.Writer
	if r.opts.serverLog != "" {
		f, err := os.Create(r.opts.serverLog)
		if err != nil {
			return fmt.Errorf("server log: %w", err)
		}
		r.serverLog = f
		logTo = f
		logf("the server's log goes to %s", r.opts.serverLog)
	}
	if r.server, err = startProcess(ctx, "server", bin, nil, env, "http://"+addr, "/readyz", logTo); err != nil {
		return err
	}
	return nil
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
	r.rep.seededRSS = rss
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
	resp, err := call(ctx, r.client, w, http.MethodPost, r.server.base+"/api/v1/posts", u.token, body)
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
	stopPerf := r.startPerf(ctx, name)
	defer stopPerf()
	waitProfile := r.startCPUProfile(ctx, name, b.duration)
	defer waitProfile()
	return drive(ctx, name, b, r.server.pid(), fn)
}

// profileFile returns dir/<scenario><ext>, numbered when a scenario run in turns already
// wrote one.
func profileFile(dir, name, ext string) (string, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	stem := filepath.Join(dir, strings.NewReplacer(" ", "-", "(", "", ")", "", "/", "-per-", string(filepath.Separator), "-").Replace(name))
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

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// scenarios runs every scenario, the four that have a ceiling in turns with it, so both are
// measured under the same conditions.
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
	base := r.server.base
	clients := r.opts.clients

	// List, cache hit. Each user's first page is loaded once, then every request is a hit.
	warm := drive(ctx, "warm cache", bounds{clients: clients, maxRequests: int64(len(r.users)), duration: time.Minute}, 0,
		func(ctx context.Context, w *worker, seq int64) (bool, error) {
			resp, err := call(ctx, r.client, w, http.MethodGet, base+"/api/v1/posts", r.users[seq].token, nil)
			if err != nil {
				return false, err
			}
			return false, expect(resp, w, http.StatusOK)
		})
	if err := seedErr(warm, int64(len(r.users))); err != nil {
		return err
	}
	w := &worker{}
	resp, err := call(ctx, r.client, w, http.MethodGet, base+"/api/v1/posts", r.users[0].token, nil)
	if err != nil {
		return err
	}
	if resp.status != http.StatusOK || resp.header.Get("X-Cache") != "HIT" {
		return fmt.Errorf("the list after warming was %d with X-Cache %q, want a 200 HIT", resp.status, resp.header.Get("X-Cache"))
	}
	r.rep.captured = capture(resp, w.buf.Bytes())
	ceiling, err := startHTTPCeiling(ctx, r.tmp, r.rep.captured, "", 0)
	if err != nil {
		return err
	}
	defer ceiling.stop()
	withRead, err := startHTTPCeiling(ctx, r.tmp, r.rep.captured, r.serverDSN, r.poolSize)
	if err != nil {
		return err
	}
	defer withRead.stop()
	got := r.pair(ctx, clients,
		func(b bounds) result { return r.driveServer(ctx, "list (cache hit)", b, r.listOp(base)) },
		func(b bounds) result {
			return drive(ctx, "HTTP ceiling (bare net/http)", b, ceiling.pid(), r.listOp(ceiling.base))
		},
		func(b bounds) result {
			return drive(ctx, "HTTP info: bare net/http + principal read", b, withRead.pid(), r.listOp(withRead.base))
		})
	ceiling.stop()
	withRead.stop()
	listHit, httpCeiling := r.record(got[0], false), r.record(got[1], true)
	httpRead := r.record(got[2], true)

	// List, cache miss: every request names a cursor no earlier request used (see futureID),
	// so its cache key is new and the page is read from MySQL; the rows are the first page's.
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
	got = r.pair(ctx, clients,
		func(b bounds) result { return r.driveServer(ctx, "list (cache miss)", b, missOp) },
		func(b bounds) result {
			return withUnit(drive(ctx, "DB ceiling: list SELECT", b, 0, selectCeiling(r.db, r.users, 20, nil)), "query")
		},
		func(b bounds) result {
			return withUnit(drive(ctx, "DB info: principal + list SELECT", b, 0, selectCeiling(r.db, r.users, 20, r.principal)), "query")
		})
	listMiss, selectCeil := r.record(got[0], false), r.record(got[1], true)
	selectRead := r.record(got[2], true)

	// Get one of the user's seeded posts.
	r.record(r.driveServer(ctx, "get one", r.bounds(), func(ctx context.Context, w *worker, seq int64) (bool, error) {
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
	got = r.pair(ctx, clients,
		func(b bounds) result { return r.driveServer(ctx, "add 1 KiB post", b, addOp) },
		func(b bounds) result {
			return withUnit(drive(ctx, "DB ceiling: add-post transaction", b, 0, insertCeiling(r.db, r.users, prose(1<<10), nil)), "tx")
		},
		func(b bounds) result {
			return withUnit(drive(ctx, "DB info: principal + add-post tx", b, 0, insertCeiling(r.db, r.users, prose(1<<10), r.principal)), "tx")
		})
	add1KiB, insertCeil := r.record(got[0], false), r.record(got[1], true)
	insertRead := r.record(got[2], true)

	// Delete the posts just added, each worker its own (so as its own user).
	r.record(r.driveServer(ctx, "delete", r.bounds(), func(ctx context.Context, w *worker, _ int64) (bool, error) {
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

	// Login with the right password, in turns with raw verifications on every core.
	loginOp := func(ctx context.Context, w *worker, _ int64) (bool, error) {
		resp, err := call(ctx, r.client, w, http.MethodPost, base+"/api/v1/auth/login", "", r.user(w).loginBody)
		if err != nil {
			return false, err
		}
		return false, expect(resp, w, http.StatusOK)
	}
	got = r.pair(ctx, clients,
		func(b bounds) result { return r.driveServer(ctx, "login", b, loginOp) },
		func(b bounds) result { return hashCeiling(ctx, r.argon2, b) })
	login, hashCeil := r.record(got[0], false), r.record(got[1], true)

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
	if err := r.listLargePages(ctx); err != nil {
		return err
	}

	r.rep.ratios = []ratio{
		{label: "cached list / HTTP ceiling", short: "LIST HIT", scenario: listHit, ceiling: httpCeiling, target: 0.6},
		{label: "add 1 KiB / DB insert ceiling", short: "ADD 1KIB", scenario: add1KiB, ceiling: insertCeil, target: 0.7},
		{label: "list miss / DB select ceiling", short: "LIST MISS", scenario: listMiss, ceiling: selectCeil, target: 0.7},
		{label: "login / hashing ceiling", short: "LOGIN", scenario: login, ceiling: hashCeil, target: 0.8},
	}
	r.rep.infoRatios = []ratio{
		{label: "cached list / bare net/http + principal read", scenario: listHit, ceiling: httpRead},
		{label: "add 1 KiB / principal read + add-post transaction", scenario: add1KiB, ceiling: insertRead},
		{label: "list miss / principal read + list SELECT", scenario: listMiss, ceiling: selectRead},
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
	defer func() {
		_, _, busy := quiet.finish()
		if d := time.Since(start); d > 0 {
			r.rep.backgroundAfter = busy.Seconds() / d.Seconds()
		}
	}()
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
