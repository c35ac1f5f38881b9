package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/acme/postsvc/config"
)

// The flood scenario: one client address floods signups from many connections while another
// address logs in with the right password, one login after the other. It measures that
// login's latency with and without the flood, in the same run, and how fast the flood's
// surplus is shed.
const (
	floodClients = 150 // the review's probe: 150 concurrent signups from one address
	floodAddr    = "198.51.100.7"
	legitAddr    = "203.0.113.7"
	// floodWarmup lets the flood fill every hashing slot and the queue before the login is
	// measured.
	floodWarmup = time.Second
	// floodMeasure is how long the login is measured, with and without the flood. It does not
	// follow -duration: one client logging in gets a few dozen logins in that time at best,
	// which p99 needs, and a run shortened for the other scenarios still measures this one.
	floodMeasure = 10 * time.Second
)

// floodFigures is what the flood scenario measured, for its own section of the report.
type floodFigures struct {
	env []string // the flood server's settings that differ from the service's defaults
	// quiet and during are the legitimate login without and with the flood; flood is the
	// flood's own signups.
	quiet, during, flood result
	// status counts answers by status and problem code ("201", "503 overloaded", ...).
	quietStatus, duringStatus, floodStatus map[string]int64
	// shed holds the latency of every 503 overloaded the flood received, sorted.
	shed []time.Duration
	// shedServerFast of the shedServerAll 503 answers to the flood were given by the server's
	// handlers within 5 ms (its request-duration histogram).
	shedServerFast, shedServerAll int64
}

// statusCounter counts answers by status and code, safely from every worker.
type statusCounter struct {
	mu     sync.Mutex
	counts map[string]int64
	shed   []time.Duration
}

func (s *statusCounter) add(status int, body []byte, took time.Duration) string {
	kind := strconv.Itoa(status)
	if status >= 400 {
		var p struct {
			Code string `json:"code"`
		}
		if json.Unmarshal(body, &p) == nil && p.Code != "" {
			kind += " " + p.Code
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counts == nil {
		s.counts = map[string]int64{}
	}
	s.counts[kind]++
	if kind == "503 overloaded" {
		s.shed = append(s.shed, took)
	}
	return kind
}

// callFrom is call with the client address named in X-Forwarded-For (the flood server trusts
// the loopback proxy), timed.
func callFrom(ctx context.Context, c *loadClient, w *worker, url, addr string, body []byte) (reply, time.Duration, error) {
	fields := append(w.fields[:0], field{"Content-Type", "application/json"}, field{"X-Forwarded-For", addr})
	w.fields = fields
	start := time.Now()
	resp, err := c.do(ctx, w, http.MethodPost, url, fields, body)
	return resp, time.Since(start), err
}

// floodServerBinary is the binary the main server runs: -server, or the one built into the
// run's temporary folder (building again would overwrite a running executable).
func (r *runner) floodServerBinary() (string, error) {
	if r.opts.server != "" {
		return filepath.Abs(r.opts.server)
	}
	return filepath.Join(r.tmp, "server"), nil
}

// flood runs the scenario on a server of its own, on the run's database: the main server
// raises the hashing queue bounds so that its throughput scenarios (every client on one
// address) are not shed, whereas this one must run with the service's defaults. Only two
// settings differ: the loopback proxy is trusted, so each request can name its client
// address, and the signup limit per address is lifted, so that every flood signup asks for a
// hash (with the default limit of 20 per window the flood would be refused with 429 after
// 20 signups and cost nothing: the worst case for the hasher is a flood the throttle does not
// stop, such as one spread over many addresses).
func (r *runner) flood(ctx context.Context) error {
	bin, err := r.floodServerBinary()
	if err != nil {
		return err
	}
	addr, err := freeLoopbackAddr(ctx)
	if err != nil {
		return err
	}
	fig := &floodFigures{env: []string{"APP_HTTP_TRUSTED_PROXIES=127.0.0.1/32", "APP_THROTTLE_SIGNUP_ATTEMPTS=1000000"}}
	env := append([]string{
		"APP_ENV=development",
		"APP_DATA_DIR=" + filepath.Join(r.tmp, "flood-data"),
		"APP_HTTP_ADDR=" + addr,
		"APP_LOG_LEVEL=warn",
		"APP_DATABASE_DRIVER=mysql",
		"APP_DATABASE_DSN=" + r.serverDSN,
	}, fig.env...)
	// With Redis like the main server, under a prefix of its own: its throttle state starts
	// empty, as the defaults it measures assume.
	env = append(env, r.redisEnvironment("flood:")...)
	env = append(env, r.opts.serverEnv...)
	logf("starting the flood scenario's server on %s", addr)
	srv, err := startProcess(ctx, "flood server", bin, nil, env, "http://"+addr, "/readyz", nil)
	if err != nil {
		return err
	}
	defer srv.stop()
	client := newLoadClient(floodClients + 1)
	defer client.CloseIdleConnections()

	// The legitimate account, signed up from its own address.
	email := fmt.Sprintf("flood-legit-%s@load.example.io", r.runID)
	loginBody, _ := json.Marshal(map[string]string{"email": email, "password": loadPassword})
	w := &worker{}
	resp, _, err := callFrom(ctx, client, w, srv.base+"/api/v1/auth/signup", legitAddr, loginBody)
	if err != nil {
		return err
	}
	if err := expect(resp, w, http.StatusCreated); err != nil {
		return err
	}

	login := func(counter *statusCounter) op {
		return func(ctx context.Context, w *worker, _ int64) (bool, error) {
			resp, took, err := callFrom(ctx, client, w, srv.base+"/api/v1/auth/login", legitAddr, loginBody)
			if err != nil {
				return false, err
			}
			counter.add(resp.status, w.buf.Bytes(), took)
			return false, expect(resp, w, http.StatusOK)
		}
	}
	measure := bounds{clients: 1, maxRequests: 1 << 40, duration: floodMeasure}

	var quiet statusCounter
	fig.quiet = r.record(drive(ctx, "login, no flood (1 client)", measure, srv.pid(), login(&quiet)), false)
	fig.quietStatus = quiet.counts

	// The flood: every connection sends its next signup as soon as it has an answer, without
	// pausing after a refusal (an attacker would not). Only answers the contract allows for a
	// flood are accepted: 201, and 503 overloaded; anything else, 503 unavailable above all,
	// is an error.
	var floodCount statusCounter
	floodDone := make(chan result, 1)
	go func() {
		b := bounds{clients: floodClients, maxRequests: 1 << 40, duration: floodWarmup + floodMeasure + 500*time.Millisecond}
		floodDone <- drive(ctx, fmt.Sprintf("signup flood from one address (%d clients)", floodClients), b, 0,
			func(ctx context.Context, w *worker, seq int64) (bool, error) {
				body := fmt.Appendf(nil, `{"email":"flood-%s-%d@load.example.io","password":%q}`, r.runID, seq, loadPassword)
				resp, took, err := callFrom(ctx, client, w, srv.base+"/api/v1/auth/signup", floodAddr, body)
				if err != nil {
					return false, err
				}
				if kind := floodCount.add(resp.status, w.buf.Bytes(), took); kind != "201" && kind != "503 overloaded" {
					return false, expect(resp, w, http.StatusCreated)
				}
				return false, nil
			})
	}()
	select {
	case <-time.After(floodWarmup):
	case <-ctx.Done():
		return ctx.Err()
	}
	var during statusCounter
	fig.during = r.record(drive(ctx, "login during the flood (1 client)", measure, srv.pid(), login(&during)), false)
	fig.duringStatus = during.counts
	fig.flood = r.record(<-floodDone, false)
	fig.floodStatus = floodCount.counts
	fig.shed = floodCount.shed
	slices.Sort(fig.shed)

	// The server's own view of the shed answers, without the runner's share of the cores.
	metrics, err := scrape(ctx, srv.base+"/metrics")
	if err != nil {
		logf("flood scenario: reading /metrics: %v", err)
	} else {
		fig.shedServerFast, fig.shedServerAll = bucket(metrics, "/api/v1/auth/signup", "503", "0.005")
	}
	logf("flood: %v; shed answers p50 %s p99 %s max %s (%d of %d within 5 ms server side)", fig.floodStatus,
		roundDur(shedPercentile(fig.shed, 0.5)), roundDur(shedPercentile(fig.shed, 0.99)), roundDur(maxOf(fig.shed)), fig.shedServerFast, fig.shedServerAll)
	r.rep.flood = fig
	return ctx.Err()
}

// shedPercentile is percentile over the shed answers' latencies, 0 when there were none
// (a server that never sheds, such as one from before shedding existed).
func shedPercentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return percentile(sorted, q)
}

func maxOf(sorted []time.Duration) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[len(sorted)-1]
}

// scrape reads a Prometheus text exposition.
func scrape(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return string(b), err
}

// bucket reads, from an exposition, how many POST requests to route answered with status the
// server's handlers finished within le seconds (a histogram bound), and how many in all.
func bucket(metrics, route, status, le string) (within, all int64) {
	prefix := `postsvc_http_request_duration_seconds_bucket{method="POST",route="` + route + `",status="` + status + `",le="`
	for line := range strings.SplitSeq(metrics, "\n") {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		bound, value, _ := strings.Cut(rest, `"} `)
		n, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch bound {
		case le:
			within = int64(n)
		case "+Inf":
			all = int64(n)
		}
	}
	return within, all
}

func statusText(counts map[string]int64) string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d × %s", counts[k], k))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// printText prints the scenario's figures after the other tables.
func (f *floodFigures) printText(w io.Writer) {
	if f == nil {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "login from another address\tlogins\tp50\tp99\tmax\tanswers\n")
	for _, row := range []struct {
		name   string
		r      result
		counts map[string]int64
	}{{"no flood", f.quiet, f.quietStatus}, {"during the signup flood", f.during, f.duringStatus}} {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", row.name, row.r.Requests, roundDur(row.r.P50), roundDur(row.r.P99), roundDur(row.r.Max), statusText(row.counts))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "signup flood (%d clients, one address): %s; 503 overloaded answered in p50 %s, p99 %s, max %s\n\n", floodClients,
		statusText(f.floodStatus), roundDur(shedPercentile(f.shed, 0.5)), roundDur(shedPercentile(f.shed, 0.99)), roundDur(maxOf(f.shed)))
}

// markdown writes the scenario's section of the report.
func (f *floodFigures) markdown(w io.Writer, hashSlots string) {
	if f == nil {
		return
	}
	fmt.Fprintf(w, "## Login during a signup flood\n\n")
	fmt.Fprintf(w, "A server of its own on the run's database, with the service's default hashing settings (%s) and two changes: `%s`. "+
		"One address floods `POST /api/v1/auth/signup` from %d keep-alive connections, each sending its next signup as soon as it has an answer (no pause after a refusal), "+
		"while another address logs in with the right password, one login after the other (1 client), for %s; the same login is measured first without the flood. "+
		"The flood starts %s before the login is measured, so every hashing slot and the queue are full.\n\n",
		hashSlots, strings.Join(f.env, "` `"), floodClients, f.during.Elapsed.Round(100*time.Millisecond), floodWarmup)
	fmt.Fprintf(w, "| login from another address | logins | p50 | p99 | max | answers |\n|---|--:|--:|--:|--:|---|\n")
	for _, row := range []struct {
		name   string
		r      result
		counts map[string]int64
	}{{"no flood", f.quiet, f.quietStatus}, {"during the signup flood", f.during, f.duringStatus}} {
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s |\n", row.name, row.r.Requests, roundDur(row.r.P50), roundDur(row.r.P99), roundDur(row.r.Max), statusText(row.counts))
	}
	fmt.Fprintf(w, "\nThe flood: %d signups in %s (%s). Its 503 `overloaded` answers (with `Retry-After: 1`) took p50 %s, p99 %s, max %s at the client; "+
		"the server's handlers gave %d of %d of them within 5 ms (its request-duration histogram).\n\n",
		f.flood.Requests, f.flood.Elapsed.Round(100*time.Millisecond), statusText(f.floodStatus),
		roundDur(shedPercentile(f.shed, 0.5)), roundDur(shedPercentile(f.shed, 0.99)), roundDur(maxOf(f.shed)), f.shedServerFast, f.shedServerAll)
}

// floodSettings describes the hashing settings the flood server runs with: the service's
// defaults (config.Defaults), unless -server-env, which the flood server gets too, sets one.
func floodSettings(opts options) string {
	d := config.Defaults()
	get := func(key string) string {
		for _, kv := range opts.serverEnv {
			if k, v, _ := strings.Cut(kv, "="); k == config.EnvName(key) {
				return v
			}
		}
		return fmt.Sprint(d[key])
	}
	share := get("auth.max_hashes_per_client")
	if share == "0" {
		slots, _ := strconv.Atoi(get("auth.max_concurrent_hashes"))
		share = strconv.Itoa(max(slots/2, 1))
	}
	return fmt.Sprintf("%s hashing slots of which one address may hold %s, at most %s checks waiting of which %s from one address",
		get("auth.max_concurrent_hashes"), share, get("auth.max_queued_hashes"), get("auth.max_queued_per_client"))
}
