package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// ratio is a scenario's throughput over its ceiling's.
type ratio struct {
	label, short      string
	scenario, ceiling result
	target            float64
}

func (r ratio) value() float64 {
	if r.ceiling.Rate() == 0 {
		return 0
	}
	return r.scenario.Rate() / r.ceiling.Rate()
}

// machineInfo describes where the run happened.
type machineInfo struct {
	cpus                                                     int
	cpuModel, memTotal, kernel, goVersion, mysqlVersion, rev string
	// sqliteVersion is the SQLite library's when SQLite ran; redis describes the run's use
	// of Redis.
	sqliteVersion, redis string
}

// report is everything a run measured.
type report struct {
	started, finished time.Time
	machine           machineInfo
	scenarios         []result
	ceilings          []result
	// ratios are every target ratio, all backends' (the chart's bars).
	ratios []ratio
	// databases are the backends measured, in the order they ran, each with its posts
	// targets.
	databases []*dbReport
	captured  capturedResponse
	// instances is the instances scenarios (instances.go), nil when they did not run.
	instances *instanceFigures
	// ran1MiB: the 1 MiB scenario ran (MySQL, the full set of scenarios).
	ran1MiB bool
	// postsOnly: only the posts scenarios ran (-posts-only).
	postsOnly bool

	idleRSS, seededRSS, peak1MiB int64
	// largePages are the list scenarios over pages of 1 MiB posts (pages.go); their peak RSS
	// has the same target as adding 1 MiB posts.
	largePages              []result
	rssAfter10s, settledRSS int64
	settleLimit, cacheMax   int64
	settleWait              time.Duration
	// backgroundBefore and backgroundAfter are the cores busy while the server idled before
	// and after the load: other processes' share of the machine.
	backgroundBefore, backgroundAfter float64
	// quietWaitMax is the longest the runner waited for a quiet machine before a turn
	// (waitQuiet), and quietMissed the turns that started without one.
	quietWaitMax time.Duration
	quietMissed  int
	// flood is the login-during-a-signup-flood scenario (flood.go), nil when it did not run.
	flood *floodFigures
	// ecg is the ECG scenarios (ecg.go), nil when they did not run.
	ecg *ecgFigures
	// ecgOnly: only the ECG scenarios ran (-ecg-only).
	ecgOnly bool
	// media is the image scenarios (media.go), nil when they did not run.
	media *mediaFigures
	// mediaOnly: only the media scenarios ran (-media-only), with the ECG ones if ecgOnly.
	mediaOnly bool
}

// Memory targets.
const peakRSSLimit = 512 << 20

func describeMachine(ctx context.Context, root string) machineInfo {
	m := machineInfo{cpus: runtime.NumCPU(), goVersion: runtime.Version(), cpuModel: "unknown", memTotal: "unknown", kernel: "unknown", rev: "unknown"}
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(raw)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpuModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(raw)) {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				var kb int64
				if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err == nil {
					m.memTotal = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
				}
			}
		}
	}
	if raw, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = "Linux " + strings.TrimSpace(string(raw))
	}
	git := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD")
	git.Dir = root
	if out, err := git.Output(); err == nil {
		m.rev = strings.TrimSpace(string(out))
		// The report's own outputs (bench/) do not make the measured code dirty.
		status := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)bench")
		status.Dir = root
		if out, err := status.Output(); err == nil && len(strings.TrimSpace(string(out))) > 0 {
			m.rev += " (with uncommitted changes)"
		}
	}
	return m
}

// check is one target and whether the run met it.
type check struct {
	name, measured, target string
	met                    bool
}

func (rep *report) checks() []check {
	var out []check
	for _, r := range rep.ratios {
		out = append(out, check{
			name:     r.label,
			measured: fmt.Sprintf("%.3f (%.0f / %.0f per s)", r.value(), r.scenario.Rate(), r.ceiling.Rate()),
			target:   fmt.Sprintf("≥ %.1f", r.target),
			met:      r.value() >= r.target,
		})
	}
	var errs int64
	var where []string
	for _, r := range append(append([]result{}, rep.scenarios...), rep.ceilings...) {
		errs += r.Errors
		if r.Errors > 0 {
			where = append(where, fmt.Sprintf("%s: %d", r.Name, r.Errors))
		}
	}
	measured := "0"
	if errs > 0 {
		measured = fmt.Sprintf("%d (%s)", errs, strings.Join(where, "; "))
	}
	out = append(out, check{name: "errors (non-2xx or transport), all scenarios", measured: measured, target: "0", met: errs == 0})
	if rep.ran1MiB {
		out = append(out, check{name: "peak RSS while 64 clients add 1 MiB posts", measured: mib(rep.peak1MiB), target: "< " + mib(peakRSSLimit), met: rep.peak1MiB > 0 && rep.peak1MiB < peakRSSLimit})
	}
	for _, p := range rep.largePages {
		out = append(out, check{
			name:     fmt.Sprintf("peak RSS while %d clients %s", p.Clients, p.Name),
			measured: mib(p.PeakRSS), target: "< " + mib(peakRSSLimit),
			met: p.PeakRSS > 0 && p.PeakRSS < peakRSSLimit && p.Errors == 0,
		})
	}
	out = append(out, rep.ecg.checks()...)
	out = append(out, rep.media.checks()...)
	out = append(out,
		check{
			name:     "RSS after the load (idle " + mib(rep.idleRSS) + ")",
			measured: settledText(rep),
			target:   "≤ " + mib(rep.settleLimit),
			met:      rep.settledRSS > 0 && rep.settledRSS <= rep.settleLimit,
		},
	)
	return out
}

func settledText(rep *report) string {
	s := fmt.Sprintf("%s after %s", mib(rep.settledRSS), rep.settleWait.Round(time.Second))
	if rep.rssAfter10s > 0 && rep.settleWait > 10*time.Second {
		s += fmt.Sprintf(" (%s after 10 s)", mib(rep.rssAfter10s))
	}
	return s
}

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "MISSED"
}

// write prints the tables, writes the Markdown report and the chart, and returns how many
// targets were missed.
func (rep *report) write(opts options) (int, error) {
	checks := rep.checks()
	missed := 0
	for _, c := range checks {
		if !c.met {
			missed++
		}
	}
	rep.printText(os.Stdout, checks)
	for _, path := range []string{opts.report, opts.chart} {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return missed, err
		}
	}
	chartRef, err := filepath.Rel(filepath.Dir(opts.report), opts.chart)
	if err != nil {
		chartRef = opts.chart
	}
	var md strings.Builder
	rep.markdown(&md, checks, filepath.ToSlash(chartRef), opts)
	if err := os.WriteFile(opts.report, []byte(md.String()), 0o600); err != nil {
		return missed, err
	}
	if err := drawChart(opts.chart, rep.ratios); err != nil {
		return missed, err
	}
	logf("wrote %s and %s", opts.report, opts.chart)
	return missed, nil
}

func (rep *report) printText(w io.Writer, checks []check) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\nscenario\tclients\trequests\terrors\trate/s\tp50\tp99\tmax\tpeak RSS\tCPU/op server|runner|other\tcores busy\n")
	for _, r := range rep.scenarios {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Clients, r.Requests, r.Errors, r.Rate(),
			roundDur(r.P50), roundDur(r.P99), roundDur(r.Max), mib(r.PeakRSS), cpuSplit(r), busy(r))
	}
	fmt.Fprintf(tw, "\nceiling\tclients\tops\terrors\trate/s\tp50\tp99\tmax\tpeak RSS\tCPU/op process|runner|other\tcores busy\n")
	for _, r := range rep.ceilings {
		rss := "-"
		if r.PeakRSS > 0 {
			rss = mib(r.PeakRSS)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d %s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Clients, r.Requests, r.Unit, r.Errors, r.Rate(),
			roundDur(r.P50), roundDur(r.P99), roundDur(r.Max), rss, cpuSplit(r), busy(r))
	}
	_ = tw.Flush()
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\ntarget\tmeasured\twant\tresult\n")
	for _, c := range checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.name, c.measured, c.target, verdict(c.met))
	}
	for _, d := range rep.databases {
		for _, r := range slices.Concat(d.httpBound, d.preparedRatios, d.infoRatios) {
			fmt.Fprintf(tw, "(info) %s: %s\t%.2f (%.0f / %.0f per s)\t\t\n", d.label(), r.label, r.value(), r.scenario.Rate(), r.ceiling.Rate())
		}
	}
	if f := rep.instances; f != nil {
		for _, p := range f.pairs {
			fmt.Fprintf(tw, "(info) %s, %d instances / 1\t%.2f (%.0f / %.0f per s)\t\t\n", p.scenario(), f.n, p.ratio(), p.all.Rate(), p.single.Rate())
		}
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	rep.ecg.printText(w)
	rep.media.printText(w)
	rep.flood.printText(w)
}

func (rep *report) markdown(w io.Writer, checks []check, chartRef string, opts options) {
	m := rep.machine
	fmt.Fprintf(w, "# Load report\n\n")
	fmt.Fprintf(w, "Written by `go run ./test/load` (`make bench`) on %s, in %s. "+
		"Every figure below comes from that one run; rerun `make bench` to refresh it.\n\n",
		rep.started.Format("2006-01-02 15:04 MST"), rep.finished.Sub(rep.started).Round(time.Second))
	if rep.postsOnly {
		fmt.Fprintf(w, "This run was limited to the posts scenarios (`-posts-only`).\n\n")
	}
	fmt.Fprintf(w, "## Machine\n\n| | |\n|---|---|\n")
	fmt.Fprintf(w, "| CPU | %s, %d cores (nproc) |\n| Memory | %s |\n| OS | %s |\n| Go | %s |\n| Databases | %s |\n| Redis | %s |\n| Service | commit %s |\n| Background load | %.2f cores busy before the load, %.2f while the server idled after it (other processes: the runner measures on a shared machine) |\n\n",
		m.cpuModel, m.cpus, m.memTotal, m.kernel, m.goVersion, rep.databasesText(), m.redis, m.rev, rep.backgroundBefore, rep.backgroundAfter)

	fmt.Fprintf(w, "## Targets\n\n| target | measured | want | result |\n|---|---|---|---|\n")
	for _, c := range checks {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", c.name, c.measured, c.target, verdict(c.met))
	}
	fmt.Fprintf(w, "\n![Each scenario's throughput as a ratio of its ceiling; the line across each bar is its target](%s)\n\n", chartRef)
	fmt.Fprintf(w, "Bars, left to right: %s. Green meets its target line, red does not.\n\n", joinShort(rep.ratios))
	fmt.Fprintf(w, "None of the ceilings above reads a principal: they are what the hardware and the libraries do without the service's design choices.\n\n")

	for _, d := range rep.databases {
		d.markdown(w)
	}
	rep.instances.markdown(w, opts, rep.instancesLabel())

	if len(opts.serverEnv) > 0 {
		fmt.Fprintf(w, "The server ran with these settings added to its environment: `%s`.\n\n", opts.serverEnv.String())
	}
	fmt.Fprintf(w, "## Scenarios\n\nThe real server (`./cmd/server`) on 127.0.0.1, %s, %d concurrent keep-alive clients "+
		"(%d for 1 MiB posts); every scenario and HTTP ceiling is driven by the runner's own HTTP/1.1 client (`test/load/client.go`), which takes about half the CPU per request of `net/http`'s and so leaves more of the shared machine to what it measures; each scenario stops after %d requests or %s, whichever comes first. "+
		"\"Principals\" counts, from the server's `/metrics`, the authenticated requests whose principal it served from memory, and the Redis calls that failed or timed out during the scenario (principals are read from the database until Redis answers again).\n\n",
		rep.backendsText(), opts.clients, opts.clients1MiB, opts.requests, opts.duration)
	fmt.Fprintf(w, "| scenario | clients | requests | errors | req/s | p50 | p99 | max | server peak RSS | CPU per request: server / runner / other | cores busy | principals |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rep.scenarios {
		fmt.Fprintf(w, "| %s | %d | %d | %d | %.0f | %s | %s | %s | %s | %s | %s | %s |\n", r.Name, r.Clients, r.Requests, r.Errors, r.Rate(),
			roundDur(r.P50), roundDur(r.P99), roundDur(r.Max), mib(r.PeakRSS), cpuSplit(r), busy(r), principalsNote(r))
	}
	for _, r := range rep.scenarios {
		if r.Unexpected > 0 {
			fmt.Fprintf(w, "\n%s: %d answers had an unexpected X-Cache header.\n", r.Name, r.Unexpected)
		}
	}
	fmt.Fprintf(w, "\n## Ceilings\n\nMeasured in the same run with the same concurrency, in %d turns alternating with the scenario each one bounds "+
		"(scenario, ceiling, scenario, ceiling, ...), so that anything else the machine does weighs on both alike. "+
		"The scenarios with a ceiling are reported over the same turns. Before every turn (and before each ECG time-to-done run) the runner waits until fewer than %.2f cores "+
		"of the machine have been busy over %s twice in a row (at most %s), so that work an earlier turn left behind (the database "+
		"purging deleted rows, say) does not land on the next one; the longest wait was %s, and %d turns started without a quiet machine.\n\n",
		opts.rounds, quietCores, quietWindow, quietTimeout, roundDur(rep.quietWaitMax), rep.quietMissed)
	fmt.Fprintf(w, "| ceiling | workers | operations | errors | per s | p50 | p99 | max | CPU per operation: process / runner / other | cores busy |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rep.ceilings {
		fmt.Fprintf(w, "| %s | %d | %d %s | %d | %.0f | %s | %s | %s | %s | %s |\n", r.Name, r.Clients, r.Requests, r.Unit, r.Errors, r.Rate(),
			roundDur(r.P50), roundDur(r.P99), roundDur(r.Max), cpuSplit(r), busy(r))
	}
	fmt.Fprintf(w, "\n## Memory\n\nThe %s server's.\n\n| moment | server RSS |\n|---|--:|\n", rep.memoryLabel())
	fmt.Fprintf(w, "| idle after start-up (migrated, nothing served) | %s |\n| after seeding | %s |\n", mib(rep.idleRSS), mib(rep.seededRSS))
	if rep.ran1MiB {
		fmt.Fprintf(w, "| peak, %d clients adding 1 MiB posts | %s |\n", opts.clients1MiB, mib(rep.peak1MiB))
	}
	fmt.Fprintf(w, "| %s after the load | %s |\n\n", rep.settleWait.Round(time.Second), mib(rep.settledRSS))
	fmt.Fprintf(w, "\"Near idle\" is at most the idle RSS plus the post-list cache's byte budget (%s, pages the server may keep for their TTL) plus 32 MiB. "+
		"The server exposes nothing for this: the runner reads VmRSS from /proc once a second for up to %s. "+
		"An idle Go process gives memory back only after a garbage collection, and without allocation the runtime forces one every two minutes.\n\n",
		mib(rep.cacheMax), opts.settle)

	rep.ecg.markdown(w, opts)
	rep.media.markdown(w, opts)
	rep.flood.markdown(w, floodSettings(opts))

	fmt.Fprintf(w, "## Method\n\n")
	fmt.Fprintf(w, "- Backends, in this order: %s; each with a server, users and posts of its own. "+
		"MySQL: a database of the run's own on the MySQL server, dropped at the end; with Redis, the server runs with `APP_REDIS_URL` and an `APP_REDIS_PREFIX` of the run's own "+
		"(its keys are deleted at the end), and serves principals from memory while the stamp board vouches for them; without, it reads every request's principal from MySQL. "+
		"SQLite: a fresh file in the run's temporary folder (`APP_DATABASE_DRIVER=sqlite`), one process, principals in its memory. SQLite runs the posts scenarios only.\n",
		rep.backendsText())
	fmt.Fprintf(w, "- Seeding: %d users signed up through the API, %d posts of %d bytes each; client *i* acts as user *i* mod %d.\n",
		opts.users, opts.posts, opts.postBytes, opts.users)
	fmt.Fprintf(w, "- List (cache hit): `GET /api/v1/posts` (first page, 20 posts), after one warming request per user; every answer is checked to say `X-Cache: HIT`.\n")
	fmt.Fprintf(w, "- List (cache miss): `GET /api/v1/posts?cursor=…` where every request carries a cursor no earlier request used: it encodes a UUIDv7-shaped id whose time field is all ones, later than every stored post, so the rows are the first page's while the cache key is new. Every answer is checked to say `X-Cache: MISS`. The pages it stores fill the cache up to its byte budget, as a miss-heavy load would.\n")
	fmt.Fprintf(w, "- Get one: `GET /api/v1/posts/{id}` over the user's seeded posts. Delete: `DELETE /api/v1/posts/{id}` of the posts the 1 KiB scenario added, each client its own, until none is left or the bounds are reached.\n")
	if rep.ran1MiB {
		fmt.Fprintf(w, "- Login and signup use the service's default argon2id cost; the server runs with `APP_AUTH_MAX_CONCURRENT_HASHES=%d` (one per core) and throttling limits raised.\n", rep.machine.cpus)
	}
	fmt.Fprintf(w, "- HTTP ceiling: a bare `net/http` server in a process of its own (this runner, started again) that answers every request with the status, headers and body of a cached list response captured from the server (%d bytes of body), driven by the same client code. On MySQL, the \"HTTP info\" row is the same process reading the principal of the token's session from MySQL first, with the same prepared statement.\n", len(rep.captured.Body))
	fmt.Fprintf(w, "- DB ceilings: the service's own statements, as it issues them on each database, through `database/sql` from the same number of goroutines: the add-post transaction (the author's stamps read, `FOR UPDATE` on MySQL, and written back bumped, the post's bytes counted into the author's total within the posts quota, `INSERT INTO posts`, commit) and the list `SELECT`s (21 heads, then the page's texts; fresh cursor each time), each statement passed to `database/sql` as text, the plain way, which database/sql prepares, runs and closes on every call (on MySQL a round trip more per statement). "+
		"The \"DB info: …, prepared\" rows are the same statements prepared once on the pool, as the service runs its own (database/sql prepares each on a connection the first time it runs there); they are not targets, and show how much of a target ratio the service owes to preparing. "+
		"MySQL: go-sql-driver/mysql with the driver settings the service adds to its DSN (`gormstore.MySQLConfig`) and its pool size, on the server's database. "+
		"SQLite: the pool the service's own adapter opens (`gormstore.Open`: libtnb/sqlite on modernc.org/sqlite, WAL, busy_timeout, foreign keys, `BEGIN IMMEDIATE`, 4 connections) on a copy of the server's seeded file (`VACUUM INTO`), so that the server stays the one process on its file; the ceiling runs in this runner's process. "+
		"The MySQL \"DB info\" rows add the authentication read (session joined to user, a statement prepared once on the pool) that every authenticated request made before principals were kept in memory; they are not targets.\n")
	fmt.Fprintf(w, "- \"HTTP info: bare net/http + list SELECT\": this runner started again as a process of its own, a bare `net/http` server with the service's timeouts that, for each request, reads the user from the bearer token (unverified) and the position from the cursor, runs the DB ceiling's two list statements through `database/sql`, prepared once on the pool as the service runs them (MySQL: the same driver settings and pool size, on the server's database; SQLite: the service's adapter on a copy of its own, since SQLite shares a file between processes through file locks), and answers with the captured list page. Same clients and requests as the list-miss scenario, in turns with it. It is what a service with no routing, authentication, cache or encoding of its own would do: its ratio to the DB ceiling is about the most a service answering over HTTP on this machine can reach against that ceiling, since its clients and its HTTP exchange share the cores with the statements.\n")
	if rep.instances != nil {
		fmt.Fprintf(w, "- Instances: %d servers started from the same binary with the same settings, on the same MySQL database and Redis prefix; the clients are spread round-robin over them.\n", rep.instances.n)
	}
	if rep.ran1MiB {
		fmt.Fprintf(w, "- Hashing ceiling: raw argon2id key derivations with the service's parameters plus a constant-time compare (what a verification is), on %d goroutines (runtime.NumCPU).\n", rep.machine.cpus)
	}
	fmt.Fprintf(w, "- CPU per request splits the machine's busy CPU time during the run (from /proc) into the measured process (the server, or the HTTP ceiling's process), this runner (the clients, and the in-process ceilings' own work: all of the SQLite ceilings' database work), and everything else, which is the database server above all. \"Cores busy\" is the machine's average; %d means saturated.\n", rep.machine.cpus)
	fmt.Fprintf(w, "- Latencies are measured by the client from sending a request to reading the whole response body. Peak RSS is the kernel's high-water mark (VmHWM, reset per scenario through /proc/<pid>/clear_refs) and VmRSS polled every 20 ms, whichever is higher.\n")
}

// markdown writes the backend's section: its setup and its three posts targets.
func (d *dbReport) markdown(w io.Writer) {
	fmt.Fprintf(w, "## %s\n\n", d.label())
	if d.driver == dbMySQL && !d.redis {
		fmt.Fprintf(w, "**No Redis was given (`-redis-url` or `TEST_REDIS_URL`): this server read every authenticated request's principal from MySQL. "+
			"The issue's targets are for MySQL *with* Redis; these ratios do not measure them.**\n\n")
	}
	fmt.Fprintf(w, "%s; %s. Server RSS %s idle, %s after seeding.", d.version, d.setup, mib(d.idleRSS), mib(d.seededRSS))
	if d.redisEnd != "" {
		fmt.Fprintf(w, " Redis, as the server reported it at the end: %s.", d.redisEnd)
	}
	fmt.Fprintf(w, "\n\n| target | measured | want | result | principals from memory |\n|---|---|---|---|---|\n")
	for _, r := range d.ratios {
		fmt.Fprintf(w, "| %s | %.3f (%.0f / %.0f per s) | ≥ %.1f | %s | %s |\n", strings.TrimPrefix(r.label, d.label()+": "),
			r.value(), r.scenario.Rate(), r.ceiling.Rate(), r.target, verdict(r.value() >= r.target), principalsNote(r.scenario))
	}
	fmt.Fprintln(w)
	infoTable(w, d.httpBound, "The list miss against a bare `net/http` server (a process of its own) that runs the same two list statements through `database/sql` for the token's user and the cursor's position, prepared as the service prepares them, with the same driver settings and pool, then answers the captured page; and that server against the DB ceiling: what a service that does nothing but the list's statements and a bare HTTP exchange reaches (not targets):")
	infoTable(w, d.preparedRatios, "Against the same DB ceilings with their statements prepared once per connection, as the service runs its own, instead of passed as text (not targets):")
	infoTable(w, d.infoRatios, "Against ceilings that also read the principal from MySQL on every request, as the service does on MySQL without Redis (not targets):")
}

// infoTable writes ratios that are not targets under intro, when there are any.
func infoTable(w io.Writer, ratios []ratio, intro string) {
	if len(ratios) == 0 {
		return
	}
	fmt.Fprintf(w, "%s\n\n| ratio | measured |\n|---|---|\n", intro)
	for _, r := range ratios {
		fmt.Fprintf(w, "| %s | %.2f (%.0f / %.0f per s) |\n", r.label, r.value(), r.scenario.Rate(), r.ceiling.Rate())
	}
	fmt.Fprintln(w)
}

// databasesText lists the database servers and libraries the run used.
func (rep *report) databasesText() string {
	var parts []string
	if rep.machine.mysqlVersion != "" {
		parts = append(parts, "MySQL-compatible server "+rep.machine.mysqlVersion)
	}
	if rep.machine.sqliteVersion != "" {
		parts = append(parts, "SQLite "+rep.machine.sqliteVersion+" (modernc.org/sqlite, in process)")
	}
	if len(parts) == 0 {
		return "unknown"
	}
	return strings.Join(parts, "; ")
}

// backendsText names the backends measured, in order.
func (rep *report) backendsText() string {
	var parts []string
	for _, d := range rep.databases {
		parts = append(parts, d.label())
	}
	return strings.Join(parts, ", then ")
}

// memoryLabel names the backend whose server the memory figures follow (the last one).
func (rep *report) memoryLabel() string {
	if len(rep.databases) == 0 {
		return "main"
	}
	return rep.databases[len(rep.databases)-1].label()
}

// instancesLabel describes the instances' backend.
func (rep *report) instancesLabel() string {
	for _, d := range rep.databases {
		if d.driver == dbMySQL {
			return d.label()
		}
	}
	return "MySQL"
}

// cpuSplit is the CPU time per operation of the measured process, the runner and the rest of
// the machine (the database, mostly).
func cpuSplit(r result) string {
	proc := "-"
	if r.ProcCPU > 0 {
		proc = micros(r.perOp(r.ProcCPU))
	}
	return fmt.Sprintf("%s / %s / %s", proc, micros(r.perOp(r.SelfCPU)), micros(r.perOp(r.OtherCPU())))
}

func micros(d time.Duration) string {
	if d >= 10*time.Millisecond {
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%d µs", d.Microseconds())
}

// busy is how many cores were busy on average during the run.
func busy(r result) string {
	if r.Elapsed <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", r.MachineCPU.Seconds()/r.Elapsed.Seconds())
}

func joinShort(rs []ratio) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.label
	}
	return strings.Join(parts, ", ")
}

func roundDur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(10 * time.Microsecond).String()
	default:
		return d.Round(time.Millisecond).String()
	}
}
