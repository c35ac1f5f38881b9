// Command load drives the real server binary against MySQL (with Redis when one is given) and
// against SQLite with many concurrent keep-alive clients, scenario by scenario, measures the
// ceilings the hardware and the libraries set in the same run, and writes a Markdown report
// and a PNG chart of each scenario's ratio to its ceiling.
//
//	go run ./test/load -h
//	TEST_MYSQL_DSN='root@tcp(127.0.0.1:3306)/' TEST_REDIS_URL=redis://127.0.0.1:6379/0 go run ./test/load
//
// Everything listens on 127.0.0.1 only. Every scenario stops by itself, after -requests
// requests or -duration, whichever comes first. The run creates a database of its own on the
// MySQL server and drops it at the end, keeps its SQLite files in its temporary folder, and
// deletes its Redis keys (all under a prefix of its own) at the end.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the runner's flags.
type options struct {
	server       string
	mysqlDSN     string
	clients      int
	clients1MiB  int
	duration     time.Duration
	requests     int64
	requests1MiB int64
	users        int
	posts        int
	postBytes    int
	settle       time.Duration
	report       string
	chart        string
	strict       bool
	perfDir      string
	pprofDir     string
	rounds       int
	serverEnv    envList
	// ecgOnly runs the ECG scenarios alone.
	ecgOnly bool
	// serverLog, when set, is a file that receives the server's whole log.
	serverLog string
	// ecgLargeUploads is how many clients upload a 64 MiB ECG at once (ecg.go); 0 skips it.
	ecgLargeUploads int
	// mediaOnly runs the media scenarios alone (with ecgOnly: both).
	mediaOnly bool
	// mediaBulkUploads is how many clients upload 50 files of 1 MiB at once (media.go); 0
	// skips it.
	mediaBulkUploads int
	// postsOnly runs the posts scenarios alone (list, get, add 1 KiB, delete; see
	// runner.postsScenarios), and with instances > 1 the instances scenarios.
	postsOnly bool
	// database is -database as given: "mysql", "sqlite", "both" or "" (the default, see
	// resolveDatabases); databases is the order the run measures them in.
	database  string
	databases []string
	// redisURL is the Redis server the MySQL servers share their principals' stamps through;
	// empty for none.
	redisURL string
	// instances is how many servers share the MySQL database (and Redis prefix) in the
	// instances scenarios (instances.go); 1 skips them.
	instances int
}

// Values of -database.
const (
	dbMySQL  = "mysql"
	dbSQLite = "sqlite"
	dbBoth   = "both"
)

// envList is a repeatable KEY=VALUE flag.
type envList []string

func (e *envList) String() string { return strings.Join(*e, " ") }

func (e *envList) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
		return fmt.Errorf("%q is not KEY=VALUE", v)
	}
	*e = append(*e, v)
	return nil
}

func main() {
	// The ECG upload ceiling (ecg.go) is this same program started again too.
	if os.Getenv(envECGCeilingAddr) != "" {
		if err := serveECGCeiling(); err != nil {
			fmt.Fprintln(os.Stderr, "ECG ceiling:", err)
			os.Exit(1)
		}
		return
	}
	// So are the media upload and serve ceilings (media.go).
	if os.Getenv(envMediaCeilingAddr) != "" {
		if err := serveMediaCeiling(); err != nil {
			fmt.Fprintln(os.Stderr, "media ceiling:", err)
			os.Exit(1)
		}
		return
	}
	// The HTTP ceiling is this same program started again as a separate process.
	if file := os.Getenv(envCeilingResponse); file != "" {
		pool, _ := strconv.Atoi(os.Getenv(envCeilingPool))
		if err := serveCeiling(file, os.Getenv(envCeilingAddr), os.Getenv(envCeilingDSN), os.Getenv(envCeilingList), max(pool, 1)); err != nil {
			fmt.Fprintln(os.Stderr, "HTTP ceiling:", err)
			os.Exit(1)
		}
		return
	}
	opts, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	missed, err := run(ctx, opts)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
	if missed > 0 && opts.strict {
		fmt.Fprintf(os.Stderr, "load: %d target(s) missed\n", missed)
		os.Exit(3)
	}
}

func parseFlags(args []string) (options, error) {
	root, rootErr := moduleRoot()
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.server, "server", "", "server binary to run; empty builds ./cmd/server into a temporary folder")
	fs.StringVar(&o.mysqlDSN, "mysql-dsn", "",
		"DSN of a MySQL/MariaDB server whose user may CREATE and DROP databases (default $TEST_MYSQL_DSN);\n"+
			"the run uses a fresh database of its own and drops it at the end")
	fs.IntVar(&o.clients, "clients", 64, "concurrent keep-alive clients per scenario and ceiling")
	fs.IntVar(&o.clients1MiB, "clients-1mib", 64, "concurrent clients adding 1 MiB posts (the peak-RSS scenario)")
	fs.DurationVar(&o.duration, "duration", 8*time.Second, "longest time per scenario and per ceiling")
	fs.IntVar(&o.rounds, "rounds", 4,
		"turns in which a scenario and its ceiling alternate (each turn gets -duration/-rounds and\n"+
			"-requests/-rounds), so that other load on the machine weighs on both alike")
	fs.Int64Var(&o.requests, "requests", 200_000, "most requests per scenario and per ceiling")
	fs.Int64Var(&o.requests1MiB, "requests-1mib", 1_000, "most requests of the 1 MiB scenario (each stores 1 MiB in MySQL)")
	fs.IntVar(&o.users, "users", 64, "users seeded; client i acts as user i mod users")
	fs.IntVar(&o.posts, "posts", 30, "posts seeded per user (a full first page of 20 and a next cursor)")
	fs.IntVar(&o.postBytes, "post-bytes", 280, "text size of a seeded post")
	fs.DurationVar(&o.settle, "settle", 150*time.Second,
		"longest wait after the load for the server's RSS to return near its idle level\n"+
			"(the Go runtime forces a GC after 2 minutes without one, then returns the memory)")
	fs.StringVar(&o.report, "report", filepath.Join("bench", "REPORT.md"), "Markdown report to write (a relative path is relative to the module root)")
	fs.StringVar(&o.chart, "chart", filepath.Join("bench", "ratios.png"), "PNG chart of the ratios to write (relative to the module root too)")
	fs.BoolVar(&o.strict, "strict", false, "exit with status 3 when a target is missed")
	fs.IntVar(&o.ecgLargeUploads, "ecg-large-uploads", 64,
		"clients that each upload one ECG body just under the 64 MiB limit, all at once (the ECG\n"+
			"peak-RSS scenario); 0 skips it")
	fs.BoolVar(&o.ecgOnly, "ecg-only", false, "run the ECG scenarios only (and check only their targets), to work on them")
	fs.IntVar(&o.mediaBulkUploads, "media-bulk-uploads", 64,
		"clients that each upload 50 JPEGs of 1 MiB in one request, all at once (the media peak-RSS\n"+
			"scenario); 0 skips it")
	fs.BoolVar(&o.mediaOnly, "media-only", false,
		"run the media scenarios only (and check only their targets), to work on them; with -ecg-only,\n"+
			"the ECG and media scenarios")
	fs.BoolVar(&o.postsOnly, "posts-only", false,
		"run the posts scenarios only (list cache hit and miss, get one, add 1 KiB, delete, and the\n"+
			"-instances ones), with their ceilings, to work on them")
	fs.StringVar(&o.database, "database", "",
		"mysql, sqlite or both: the backends to measure (default both when a MySQL DSN is given,\n"+
			"sqlite otherwise; mysql with -ecg-only or -media-only). SQLite runs the posts scenarios\n"+
			"only, on a fresh file in the run's temporary folder, principals in process memory")
	fs.StringVar(&o.redisURL, "redis-url", "",
		"Redis server the MySQL servers run with (APP_REDIS_URL, a fresh APP_REDIS_PREFIX of the\n"+
			"run's own) (default $TEST_REDIS_URL); empty: no Redis, every request reads its principal\n"+
			"from MySQL")
	fs.IntVar(&o.instances, "instances", 1,
		"servers sharing the MySQL database and Redis prefix in the instances scenarios (cached\n"+
			"list and 1 KiB add, clients spread round-robin over them, in turns with one server);\n"+
			"1 skips them")
	fs.StringVar(&o.serverLog, "server-log", "", "file to write the server's whole log to (by default only its tail is kept, for errors)")
	fs.Var(&o.serverEnv, "server-env",
		"KEY=VALUE added to the server's environment after the runner's own settings, to try a\n"+
			"change without editing code (GOGC=200, APP_DATABASE_MAX_OPEN_CONNS=8, ...); repeatable")
	fs.StringVar(&o.perfDir, "perf-dir", "",
		"when set, record each server scenario with Linux perf (perf record -g) into this folder,\n"+
			"one <scenario>.data file each; read them with perf report -i FILE")
	fs.StringVar(&o.pprofDir, "pprof-dir", "",
		"when set, run the server with its Go profiler on (APP_HTTP_PPROF_ADDR) and save a CPU\n"+
			"profile of each server scenario turn into this folder, one <scenario>.pprof file each;\n"+
			"read them with go tool pprof -top FILE")
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprint(out, `Usage: go run ./test/load [flags]

Starts the real server (127.0.0.1 only) against a fresh MySQL database (with Redis when
-redis-url or TEST_REDIS_URL names one) and against a fresh SQLite file, seeds users and posts,
and drives each scenario with concurrent keep-alive clients: signup, login, add 1 KiB post,
add 1 MiB post, list (cache hit), list (cache miss), get one, delete, and the ECG uploads
(ecg.go: throughput, time to done, GET, 64 MiB uploads), and the image uploads (media.go:
1 MiB JPEG uploads, public GET, 64 uploads of 50 files at once). Each scenario stops
after -requests requests or -duration, whichever comes first. For each it reports requests/s,
p50/p99/max latency, errors (non-2xx or transport) and the server's peak RSS. On SQLite only
the posts scenarios run (list, get one, add 1 KiB, delete); with -instances N, the cached list
and the 1 KiB add also run against N servers sharing the MySQL database and Redis prefix.

In the same run, in turns with the scenario each one bounds, it measures the ceilings: a bare
net/http server replaying a captured cached list response (separate process), the same INSERT
transaction and SELECT through database/sql (on SQLite: on a copy of the server's file,
opened by the service's own driver and settings), raw argon2id verifications on all cores, and a
bare net/http server storing each ECG upload body with one INSERT (separate process), a bare
net/http server writing each uploaded image with the server's filesystem store into its folder,
and http.ServeFile of a stored image (separate processes). The
report gives each scenario as a ratio to its ceiling against the targets, the CPU time per
request of the server, the runner and the rest of the machine (the database), and the
server's RSS after the load.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if rootErr != nil {
		return o, rootErr
	}
	if o.mysqlDSN == "" {
		o.mysqlDSN = os.Getenv("TEST_MYSQL_DSN")
	}
	if o.redisURL == "" {
		o.redisURL = os.Getenv("TEST_REDIS_URL")
	}
	for _, p := range []*string{&o.report, &o.chart} {
		if !filepath.IsAbs(*p) {
			*p = filepath.Join(root, *p)
		}
	}
	databases, err := resolveDatabases(o)
	if err != nil {
		return o, err
	}
	o.databases = databases
	switch {
	case o.clients < 1 || o.clients1MiB < 1 || o.users < 1 || o.posts < 1 || o.postBytes < 1:
		return o, errors.New("-clients, -clients-1mib, -users, -posts and -post-bytes must be at least 1")
	case o.duration <= 0 || o.requests < 1 || o.requests1MiB < 1 || o.rounds < 1:
		return o, errors.New("-duration, -requests, -requests-1mib and -rounds must be positive")
	case o.ecgLargeUploads < 0 || o.mediaBulkUploads < 0:
		return o, errors.New("-ecg-large-uploads and -media-bulk-uploads must not be negative")
	case o.instances < 1 || o.instances > 16:
		return o, errors.New("-instances must be between 1 and 16")
	case o.instances > 1 && !slices.Contains(o.databases, dbMySQL):
		return o, errors.New("-instances needs MySQL (-database mysql or both): one SQLite file serves one process")
	case o.instances > 1 && (o.ecgOnly || o.mediaOnly):
		return o, errors.New("-instances runs posts scenarios: it does not go with -ecg-only or -media-only")
	}
	return o, nil
}

// resolveDatabases turns -database into the backends to measure, in the order they run:
// SQLite first (its posts scenarios are short and leave nothing running), then MySQL, whose
// run ends with the scenarios that load the machine longest (ECG analyses, thumbnails) and
// whose server is the one the memory figures follow.
func resolveDatabases(o options) ([]string, error) {
	only := o.ecgOnly || o.mediaOnly
	if o.postsOnly && only {
		return nil, errors.New("-posts-only does not go with -ecg-only or -media-only")
	}
	database := o.database
	if database == "" {
		switch {
		case only:
			database = dbMySQL
		case o.mysqlDSN != "":
			database = dbBoth
		default:
			database = dbSQLite
		}
	}
	var out []string
	switch database {
	case dbMySQL:
		out = []string{dbMySQL}
	case dbSQLite:
		out = []string{dbSQLite}
	case dbBoth:
		out = []string{dbSQLite, dbMySQL}
	default:
		return nil, fmt.Errorf("-database %q: want mysql, sqlite or both", o.database)
	}
	if slices.Contains(out, dbMySQL) && o.mysqlDSN == "" {
		return nil, errors.New("no MySQL server: set -mysql-dsn or TEST_MYSQL_DSN (e.g. 'root@tcp(127.0.0.1:3306)/'), or run -database sqlite")
	}
	if only && slices.Contains(out, dbSQLite) {
		return nil, errors.New("the ECG and media scenarios run on MySQL only: -ecg-only and -media-only need -database mysql")
	}
	return out, nil
}

// moduleRoot finds the folder holding this module's go.mod, from the working directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		raw, err := os.ReadFile(filepath.Join(dir, "go.mod")) //nolint:gosec // G304: go.mod of a parent folder
		if err == nil && strings.Contains(string(raw), "module github.com/acme/postsvc\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the github.com/acme/postsvc module")
		}
		dir = parent
	}
}

// numCPU is the core count the server and the hashing ceiling use.
func numCPU() int { return runtime.NumCPU() }
