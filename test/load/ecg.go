package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/acme/postsvc/config"
)

// The ECG scenarios (the ecg context, ../shared/API.md "ECGs"):
//
//   - upload of a typical ECG (12 leads of 5,000 samples, about 265 KB of JSON) from -clients
//     clients, in turns with the ECG upload ceiling: a bare net/http handler, in a process of
//     its own, that reads the same body and stores the same bytes with one raw database/sql
//     INSERT (target: 0.6 of it), and with the same handler without the INSERT (information);
//   - time to done: uploads paced open-loop at 0.8 times the ceiling's throughput, each
//     followed from its start until its analysis is done (target: p99 under 1 s); and, for
//     information, the same at 0.8 times the rate this run sustained for uploads and their
//     analyses together;
//   - GET of a 12 × 5,000 ECG with its signals (information);
//   - -ecg-large-uploads clients uploading a body just under the 64 MiB limit at once, once
//     each (target: the server's peak RSS under 512 MiB, every upload accepted).

// Environment of the ECG upload ceiling process (see serveECGCeiling).
const (
	envECGCeilingAddr     = "POSTSVC_LOAD_ECG_CEILING_ADDR"
	envECGCeilingResponse = "POSTSVC_LOAD_ECG_CEILING_RESPONSE"
	envECGCeilingLimit    = "POSTSVC_LOAD_ECG_CEILING_LIMIT"
	// envECGCeilingDSN, when set, makes the ceiling store each body with one INSERT;
	// envECGCeilingPool is that pool's size.
	envECGCeilingDSN  = "POSTSVC_LOAD_ECG_CEILING_DSN"
	envECGCeilingPool = "POSTSVC_LOAD_ECG_CEILING_POOL"
)

// The ECG ceiling's table, made in the run's database, and its one statement.
const (
	createECGCeilingSQL = "CREATE TABLE IF NOT EXISTS load_ecg_ceiling (id BIGINT AUTO_INCREMENT PRIMARY KEY, body LONGBLOB NOT NULL) ENGINE=InnoDB"
	insertECGCeilingSQL = "INSERT INTO load_ecg_ceiling (body) VALUES (?)"
)

// Shapes and pacing of the ECG scenarios.
const (
	typicalLeads   = 12
	typicalSamples = 5000
	largeLeads     = 16
	// ecgSampleRate is the sampling rate of the generated signals, in Hz.
	ecgSampleRate = 500
	// ecgPaceFactor is the share of the service's measured upload throughput that the
	// time-to-done scenario uploads at.
	ecgPaceFactor = 0.8
	// ecgDoneTarget is the time-to-done target (p99).
	ecgDoneTarget = time.Second
	// ecgPollInterval is how often the time-to-done poller looks at the pending ECGs.
	ecgPollInterval = 20 * time.Millisecond
	// ecgDoneWait bounds the wait, after the last paced upload was answered, for the last
	// analyses; an ECG not done by then counts as not done.
	ecgDoneWait = time.Minute
	// ecgIdleUploads is how many ECGs are uploaded one at a time on the idle server, each
	// followed to done through GET /insights (information: "done within a second on an idle
	// service").
	ecgIdleUploads = 10
	// ecgDrainWait bounds the wait for the analysis backlog after an upload turn.
	ecgDrainWait = 5 * time.Minute
	// ecgLargeTimeout bounds one 64 MiB upload at the client.
	ecgLargeTimeout = 30 * time.Minute
	// ecgLargeProfile is how long the server is profiled (-pprof-dir) from the start of the
	// 64 MiB uploads.
	ecgLargeProfile = time.Minute
)

// ecgLeadNames are the names of the generated leads: the standard twelve, then four more.
var ecgLeadNames = [...]string{"I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6", "V3R", "V4R", "V7", "V8"}

// ecgLeadGains scale the generated beat per lead (aVR is inverted, as on a real ECG), and
// ecgLeadOffsets are each lead's baseline (electrode) offset, in µV.
var (
	ecgLeadGains   = [...]float64{0.9, 1.2, 0.5, -0.9, 0.4, 0.8, 0.6, 0.9, 1.1, 1.3, 1.1, 0.9, 0.5, 0.6, 0.7, 0.6}
	ecgLeadOffsets = [...]float64{-310, 240, 420, -180, 350, -260, 150, -400, 280, -220, 330, -350, 200, -290, 380, -240}
)

// leadStats are a generated lead's insights as the contract defines them, to check the
// service's.
type leadStats struct {
	min, max      int32
	sum           int64
	n             int64
	zeroCrossings int64
}

func (s *leadStats) add(v int32, last *int32) {
	if s.n == 0 {
		s.min, s.max = v, v
	}
	s.min, s.max = min(s.min, v), max(s.max, v)
	s.sum += int64(v)
	s.n++
	if v != 0 {
		if *last != 0 && (*last < 0) != (v < 0) {
			s.zeroCrossings++
		}
		*last = v
	}
}

// ecgDoc is a generated ECG upload body.
type ecgDoc struct {
	body    []byte
	leads   int
	samples int // per lead
	stats   []leadStats
	// signals are kept for the typical ECG only, to check a GET of it sample by sample.
	signals [][]int32
}

// beatTemplate is one heartbeat (P, QRS, T) sampled over its phase, in µV for a gain of 1.
var beatTemplate = func() []float64 {
	const points = 4096
	waves := []struct{ amp, mu, sigma float64 }{
		{120, 0.20, 0.025},   // P
		{-100, 0.355, 0.008}, // Q
		{1300, 0.38, 0.010},  // R
		{-280, 0.405, 0.010}, // S
		{300, 0.65, 0.050},   // T
	}
	t := make([]float64, points)
	for i := range t {
		phase := float64(i) / points
		for _, w := range waves {
			d := (phase - w.mu) / w.sigma
			t[i] += w.amp * math.Exp(-d*d/2)
		}
	}
	return t
}()

// makeECG generates an ECG of leads × samples: a heartbeat of about 72 per minute at 500 Hz
// whose beats vary in length by up to 5 %, a slow breathing wander, and noise of a few µV,
// scaled per lead, on the lead's baseline offset, and kept within ±2000. The same arguments
// always give the same body.
func makeECG(leads, samples int, keepSignals bool, seed uint64) ecgDoc {
	doc := ecgDoc{leads: leads, samples: samples, stats: make([]leadStats, leads)}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var b bytes.Buffer
	b.Grow(leads * samples * 5)
	b.WriteString(`{"date":"2024-05-01T09:30:00Z","leads":[`)
	base := float64(ecgSampleRate) * 60 / 72
	for l := range leads {
		if l > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":%q,"samples":%d,"signal":[`, ecgLeadNames[l], samples)
		var signal []int32
		if keepSignals {
			signal = make([]int32, 0, samples)
		}
		gain := ecgLeadGains[l]
		beat := base * (0.95 + 0.1*rng.Float64())
		pos := rng.Float64() * beat
		var last int32
		num := make([]byte, 0, 12)
		for i := range samples {
			if pos >= beat {
				pos -= beat
				beat = base * (0.95 + 0.1*rng.Float64())
			}
			x := ecgLeadOffsets[l] + gain*beatTemplate[int(pos/beat*float64(len(beatTemplate)))] +
				120*math.Sin(2*math.Pi*float64(i)/(4*ecgSampleRate)) + rng.NormFloat64()*6
			v := int32(math.Round(min(max(x, -2000), 2000)))
			pos++
			if i > 0 {
				b.WriteByte(',')
			}
			num = strconv.AppendInt(num[:0], int64(v), 10)
			b.Write(num)
			doc.stats[l].add(v, &last)
			if keepSignals {
				signal = append(signal, v)
			}
		}
		b.WriteString("]}")
		doc.signals = append(doc.signals, signal)
	}
	b.WriteString("]}")
	doc.body = b.Bytes()
	return doc
}

// makeLargeECG generates a largeLeads-lead ECG whose body is as close under limit as a
// sample count makes it (at most 1,000,000 samples a lead, the contract's bound).
func makeLargeECG(limit int64) ecgDoc {
	n := 1_000_000
	for {
		doc := makeECG(largeLeads, n, false, 64)
		size := int64(len(doc.body))
		if size <= limit {
			return doc
		}
		// Bytes per sample are close to constant: scale, and keep a little margin.
		n = int(float64(n)*float64(limit)/float64(size)) - 200
	}
}

// ecgUploaded is the answer to an upload: the ECG's id and its analysis state.
type ecgUploaded struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// ecgInsights is the answer of GET /ecgs/{id}/insights.
type ecgInsights struct {
	Status string `json:"status"`
	Leads  []struct {
		Name          string  `json:"name"`
		ZeroCrossings int64   `json:"zero_crossings"`
		Min           int64   `json:"min"`
		Max           int64   `json:"max"`
		Mean          float64 `json:"mean"`
	} `json:"leads"`
	Error string `json:"error"`
}

// check compares done insights with the generated ECG's.
func (in ecgInsights) check(doc ecgDoc) error {
	if in.Status != "done" {
		return fmt.Errorf("insights status %q, want done (%s)", in.Status, in.Error)
	}
	if len(in.Leads) != doc.leads {
		return fmt.Errorf("insights of %d leads, want %d", len(in.Leads), doc.leads)
	}
	for i, l := range in.Leads {
		s := doc.stats[i]
		mean := float64(s.sum) / float64(s.n)
		if l.Name != ecgLeadNames[i] || l.Min != int64(s.min) || l.Max != int64(s.max) || l.ZeroCrossings != s.zeroCrossings || math.Abs(l.Mean-mean) > 0.0015 {
			return fmt.Errorf("insights of lead %d: %s min %d max %d mean %v zero crossings %d, want %s %d %d %.3f %d",
				i, l.Name, l.Min, l.Max, l.Mean, l.ZeroCrossings, ecgLeadNames[i], s.min, s.max, mean, s.zeroCrossings)
		}
	}
	return nil
}

// ecgFigures is what the ECG scenarios measured, for the report.
type ecgFigures struct {
	typicalBytes, largeBytes int
	largeSamples             int
	maxBody                  int64
	workers                  string
	pool                     int

	// idle holds the time to done of ecgIdleUploads uploads made one at a time on the idle
	// server, followed through GET /insights; idleErr is what went wrong, if anything.
	idle    []time.Duration
	idleErr string

	// upload, ceiling and bare are the paired throughput measurement.
	upload, ceiling, bare result
	// backlog is the ECGs still pending at the end of each upload turn, and drain how long
	// they took to be analysed (outside the timing of any turn).
	backlog []int64
	drain   []time.Duration

	// at is the time-to-done scenario at the target's rate (ecgPaceFactor × the ceiling's
	// throughput); sustainable is the same at ecgPaceFactor × the rate at which this run's
	// uploads were also analysed (sustained), for information.
	at, sustainable doneRun

	get result

	// large is the 64 MiB scenario, largeOK its 202 answers; largeDrain is how long the
	// analyses of those ECGs took after the last answer, and largeDrainRSS the server's peak
	// RSS meanwhile.
	large         result
	largeOK       int64
	largeDrain    time.Duration
	largeLeft     int64
	largeDrainRSS int64
	// failedTotal counts ECGs whose analysis failed at the end of the scenarios.
	failedTotal int64
}

// doneRun is one time-to-done measurement: uploads paced at paceRate.
type doneRun struct {
	paceRate float64
	paced    result
	// done holds each paced ECG's time from its scheduled upload start to the poller first
	// seeing it done, sorted; notDone counts those not done within ecgDoneWait, failed
	// those whose analysis failed; lateMax is how late the runner started an upload at
	// worst.
	done            []time.Duration
	notDone, failed int64
	lateMax         time.Duration
	// confirmed paced ECGs answered done with the generated ECG's insights through GET
	// /insights afterwards; confirmErr is the first mismatch.
	confirmed  int64
	confirmErr string
}

// ecgMaxBody is the service's ECG body limit: its default, or the -server-env setting.
func ecgMaxBody(opts options) (int64, error) {
	v := fmt.Sprint(config.Defaults()["ecg.max_body_bytes"])
	for _, kv := range opts.serverEnv {
		if k, val, _ := strings.Cut(kv, "="); k == config.EnvName("ecg.max_body_bytes") {
			v = val
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("ECG body limit %q: not a positive integer", v)
	}
	return n, nil
}

// ecgWorkers describes the analysis workers the server runs.
func ecgWorkers(opts options) string {
	for _, kv := range opts.serverEnv {
		if k, v, _ := strings.Cut(kv, "="); k == config.EnvName("ecg.workers") {
			return v
		}
	}
	if v := fmt.Sprint(config.Defaults()["ecg.workers"]); v != "0" {
		return v
	}
	return fmt.Sprintf("%d (the number of CPUs)", numCPU())
}

// ecgScenarios runs the ECG scenarios and adds the upload ratio to the report's targets.
func (r *runner) ecgScenarios(ctx context.Context) error {
	fig := &ecgFigures{workers: ecgWorkers(r.opts), pool: r.poolSize}
	r.rep.ecg = fig
	var err error
	if fig.maxBody, err = ecgMaxBody(r.opts); err != nil {
		return err
	}
	typical := makeECG(typicalLeads, typicalSamples, true, 12)
	fig.typicalBytes = len(typical.body)
	logf("ECG body: %d leads × %d samples, %d bytes", typical.leads, typical.samples, len(typical.body))
	if _, err := r.db.ExecContext(ctx, createECGCeilingSQL); err != nil {
		return fmt.Errorf("create the ECG ceiling's table: %w", err)
	}
	captured, err := r.ecgIdle(ctx, fig, typical)
	if err != nil {
		return err
	}
	ids, err := r.ecgThroughput(ctx, fig, typical, captured)
	if err != nil {
		return err
	}
	// "At 80 % of that throughput": the ceiling's, which the upload target is a share of.
	if fig.at, err = r.timeToDone(ctx, ecgPaceFactor*fig.ceiling.Rate(), typical); err != nil {
		return err
	}
	// For information, the same at a rate this machine sustains for uploads and analyses
	// together.
	if _, _, err := r.waitAnalysed(ctx, ecgDrainWait); err != nil {
		return err
	}
	if fig.sustainable, err = r.timeToDone(ctx, ecgPaceFactor*fig.sustained(), typical); err != nil {
		return err
	}
	if err := r.ecgGet(ctx, fig, typical, ids); err != nil {
		return err
	}
	if r.opts.ecgLargeUploads > 0 {
		if err := r.ecgLarge(ctx, fig); err != nil {
			return err
		}
	}
	if err := r.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM ecgs WHERE status = 'failed'").Scan(&fig.failedTotal); err != nil {
		return err
	}
	r.rep.ratios = append(r.rep.ratios, ratio{
		label: fmt.Sprintf("ECG upload %d×%d / ECG upload ceiling (net/http + one INSERT)", typicalLeads, typicalSamples),
		short: "ECG UPLOAD", scenario: fig.upload, ceiling: fig.ceiling, target: 0.6,
	})
	return ctx.Err()
}

// uploadECG posts body as user u to base and returns the answer's id; want is the status
// expected.
func uploadECG(ctx context.Context, c *loadClient, w *worker, base string, u *loadUser, body []byte, want int) (string, error) {
	resp, err := call(ctx, c, w, http.MethodPost, base+"/api/v1/ecgs", u.token, body)
	if err != nil {
		return "", err
	}
	if err := expect(resp, w, want); err != nil {
		return "", err
	}
	var out ecgUploaded
	if err := json.Unmarshal(w.buf.Bytes(), &out); err != nil || out.ID == "" || out.Status != "pending" {
		return "", fmt.Errorf("upload answered %.200s: %w", w.buf.String(), err)
	}
	return out.ID, nil
}

// insightsOf reads an ECG's insights through the API.
func (r *runner) insightsOf(ctx context.Context, w *worker, u *loadUser, id string) (ecgInsights, error) {
	resp, err := call(ctx, r.client, w, http.MethodGet, r.server.base+"/api/v1/ecgs/"+url.PathEscape(id)+"/insights", u.token, nil)
	if err != nil {
		return ecgInsights{}, err
	}
	if err := expect(resp, w, http.StatusOK); err != nil {
		return ecgInsights{}, err
	}
	var in ecgInsights
	if err := json.Unmarshal(w.buf.Bytes(), &in); err != nil {
		return ecgInsights{}, fmt.Errorf("insights %.200s: %w", w.buf.String(), err)
	}
	return in, nil
}

// ecgIdle uploads ecgIdleUploads ECGs one at a time on the otherwise idle server, follows
// each through GET /insights every 10 ms until it is done, and checks its insights. It
// returns the first upload's answer, which the ceilings replay.
func (r *runner) ecgIdle(ctx context.Context, fig *ecgFigures, doc ecgDoc) (capturedResponse, error) {
	u := r.users[0]
	w := &worker{}
	var captured capturedResponse
	for i := range ecgIdleUploads {
		start := time.Now()
		resp, err := call(ctx, r.client, w, http.MethodPost, r.server.base+"/api/v1/ecgs", u.token, doc.body)
		if err != nil {
			return captured, err
		}
		if err := expect(resp, w, http.StatusAccepted); err != nil {
			return captured, err
		}
		var out ecgUploaded
		if err := json.Unmarshal(w.buf.Bytes(), &out); err != nil || out.ID == "" {
			return captured, fmt.Errorf("upload answered %.200s: %w", w.buf.String(), err)
		}
		if i == 0 {
			captured = capture(resp, w.buf.Bytes())
		}
		for {
			in, err := r.insightsOf(ctx, w, u, out.ID)
			if err != nil {
				return captured, err
			}
			if in.Status == "pending" {
				if time.Since(start) > ecgDoneWait {
					fig.idleErr = fmt.Sprintf("ECG %s not done after %s", out.ID, ecgDoneWait)
					break
				}
				time.Sleep(10 * time.Millisecond)
				continue
			}
			fig.idle = append(fig.idle, time.Since(start))
			if err := in.check(doc); err != nil && fig.idleErr == "" {
				fig.idleErr = err.Error()
			}
			break
		}
	}
	slices.Sort(fig.idle)
	logf("ECG time to done on the idle server (%d uploads one at a time): %s%s", len(fig.idle), durList(fig.idle), errNote(fig.idleErr))
	return captured, nil
}

func errNote(s string) string {
	if s == "" {
		return ""
	}
	return "; problem: " + s
}

func durList(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = roundDur(d)
	}
	return strings.Join(parts, " ")
}

// ecgThroughput measures the upload of doc in turns with the ECG upload ceiling and the bare
// net/http handler. After each of the server's turns it waits, outside the turn's timing, for
// the analyses the turn queued, so that they do not run during the ceilings' turns. It
// returns, per user, the ids of ECGs uploaded.
func (r *runner) ecgThroughput(ctx context.Context, fig *ecgFigures, doc ecgDoc, captured capturedResponse) ([][]string, error) {
	withInsert, err := startECGCeiling(ctx, r.tmp, captured, r.serverDSN, r.poolSize, fig.maxBody)
	if err != nil {
		return nil, err
	}
	defer withInsert.stop()
	bare, err := startECGCeiling(ctx, r.tmp, captured, "", 0, fig.maxBody)
	if err != nil {
		return nil, err
	}
	defer bare.stop()
	var mu sync.Mutex
	ids := make([][]string, len(r.users))
	op := func(base string, keep bool) op {
		return func(ctx context.Context, w *worker, _ int64) (bool, error) {
			u := r.user(w)
			id, err := uploadECG(ctx, r.client, w, base, u, doc.body, http.StatusAccepted)
			if err != nil {
				return false, err
			}
			if keep {
				i := w.id % len(r.users)
				mu.Lock()
				if len(ids[i]) < 16 {
					ids[i] = append(ids[i], id)
				}
				mu.Unlock()
			}
			return false, nil
		}
	}
	name := fmt.Sprintf("ECG upload %d×%d (%d KB)", doc.leads, doc.samples, len(doc.body)/1000)
	got := r.pair(ctx, r.opts.clients,
		func(b bounds) result {
			res := r.driveServer(ctx, name, b, op(r.server.base, true))
			left, took, err := r.waitAnalysed(ctx, ecgDrainWait)
			if err != nil {
				logf("ECG backlog: %v", err)
			}
			logf("ECG upload turn: %d uploads, %d still pending at its end, analysed %s later", res.Requests, left, took.Round(time.Millisecond))
			fig.backlog = append(fig.backlog, left)
			fig.drain = append(fig.drain, took)
			return res
		},
		func(b bounds) result {
			return drive(ctx, "ECG upload ceiling (net/http + one INSERT)", b, withInsert.pid(), op(withInsert.base, false))
		},
		func(b bounds) result {
			return drive(ctx, "ECG info: bare net/http reading the body", b, bare.pid(), op(bare.base, false))
		})
	withInsert.stop()
	bare.stop()
	fig.upload, fig.ceiling, fig.bare = r.record(got[0], false), r.record(got[1], true), r.record(got[2], true)
	return ids, ctx.Err()
}

// waitAnalysed waits until no ECG is pending, or limit has passed. It returns how many were
// pending when it started and how long they took.
func (r *runner) waitAnalysed(ctx context.Context, limit time.Duration) (int64, time.Duration, error) {
	start := time.Now()
	var first int64 = -1
	for {
		var n int64
		if err := r.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM ecgs WHERE status = 'pending'").Scan(&n); err != nil {
			return max(first, 0), time.Since(start), err
		}
		if first < 0 {
			first = n
		}
		if n == 0 {
			return first, time.Since(start), nil
		}
		if time.Since(start) > limit {
			return first, time.Since(start), fmt.Errorf("%d ECGs still pending after %s", n, limit)
		}
		select {
		case <-ctx.Done():
			return first, time.Since(start), ctx.Err()
		case <-time.After(ecgPollInterval):
		}
	}
}

// doneTracker follows paced uploads until their analysis is done. The poller reads the
// status of the pending ECGs from the run's database every ecgPollInterval, one indexed
// query for all of them, so following hundreds of ECGs costs the server nothing; every ECG
// is then checked through the API (confirm).
type doneTracker struct {
	db      *sql.DB
	mu      sync.Mutex
	pending map[string]time.Time // ECG key → scheduled upload start
	owners  map[string]*loadUser
	done    []time.Duration
	doneIDs []string
	failed  int64
	pollErr error
}

func (t *doneTracker) add(id string, u *loadUser, start time.Time) {
	t.mu.Lock()
	t.pending[id] = start
	t.owners[id] = u
	t.mu.Unlock()
}

func (t *doneTracker) left() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

// poll looks once at the pending ECGs, up to 500 per query.
func (t *doneTracker) poll(ctx context.Context) error {
	t.mu.Lock()
	keys := make([]any, 0, len(t.pending))
	for k := range t.pending {
		keys = append(keys, k)
	}
	t.mu.Unlock()
	for len(keys) > 0 {
		chunk := keys[:min(len(keys), 500)]
		keys = keys[len(chunk):]
		settled, err := settledECGs(ctx, t.db, chunk)
		if err != nil {
			return err
		}
		seen := time.Now()
		t.mu.Lock()
		for _, s := range settled {
			start, ok := t.pending[s[0]]
			if !ok {
				continue
			}
			delete(t.pending, s[0])
			if s[1] == "done" {
				t.done = append(t.done, seen.Sub(start))
				t.doneIDs = append(t.doneIDs, s[0])
			} else {
				t.failed++
			}
		}
		t.mu.Unlock()
	}
	return nil
}

// settledECGs returns the key and status of those of keys whose analysis has ended.
func settledECGs(ctx context.Context, db *sql.DB, keys []any) ([][2]string, error) {
	marks := strings.TrimSuffix(strings.Repeat("?,", len(keys)), ",")
	rows, err := db.QueryContext(ctx, "SELECT ecg_key, status FROM ecgs WHERE ecg_key IN ("+marks+") AND status <> 'pending'", keys...) //nolint:gosec // G202: placeholders only
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][2]string
	for rows.Next() {
		var key, status string
		if err := rows.Scan(&key, &status); err != nil {
			return nil, err
		}
		out = append(out, [2]string{key, status})
	}
	return out, rows.Err()
}

// run polls until stop is closed and nothing is pending, or until ctx ends.
func (t *doneTracker) run(ctx context.Context, stop <-chan struct{}) {
	tick := time.NewTicker(ecgPollInterval)
	defer tick.Stop()
	stopped := false
	for {
		if err := t.poll(ctx); err != nil && ctx.Err() == nil {
			t.mu.Lock()
			if t.pollErr == nil {
				t.pollErr = err
			}
			t.mu.Unlock()
		}
		if stopped && t.left() == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-stop:
			stopped, stop = true, nil
		case <-tick.C:
		}
	}
}

// timeToDone uploads doc open-loop at rate per second for -duration (at most -requests
// uploads), and measures each ECG's time from the upload's scheduled start to done.
func (r *runner) timeToDone(ctx context.Context, rate float64, doc ecgDoc) (doneRun, error) {
	fig := &doneRun{paceRate: rate}
	if fig.paceRate <= 0 {
		return *fig, errors.New("no throughput was measured to pace the time-to-done scenario by")
	}
	n := min(int64(fig.paceRate*r.opts.duration.Seconds()), r.opts.requests)
	n = max(n, 1)
	tracker := &doneTracker{db: r.db, pending: map[string]time.Time{}, owners: map[string]*loadUser{}}
	pollCtx, cancelPoll := context.WithCancel(ctx)
	defer cancelPoll()
	stop := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		tracker.run(pollCtx, stop)
	}()
	inFlight := 4 * r.opts.clients
	client := newLoadClient(inFlight)
	defer client.CloseIdleConnections()
	name := fmt.Sprintf("ECG upload paced at %.0f/s (open loop)", fig.paceRate)
	// The earlier turns' uploads leave the database writing pages out; a paced run that met
	// that would time it, not the service.
	r.quiet(ctx)
	waitProfile := r.startCPUProfile(ctx, name, r.opts.duration)
	stopPerf := r.startPerf(ctx, name)
	res, late := paced(ctx, name, fig.paceRate, n, inFlight, r.server.pid(), func(ctx context.Context, w *worker, seq int64, due time.Time) error {
		u := r.users[seq%int64(len(r.users))]
		id, err := uploadECG(ctx, client, w, r.server.base, u, doc.body, http.StatusAccepted)
		if err != nil {
			return err
		}
		tracker.add(id, u, due)
		return nil
	})
	stopPerf()
	waitProfile()
	fig.paced, fig.lateMax = r.record(res, false), late
	close(stop)
	select {
	case <-polled:
	case <-time.After(ecgDoneWait):
		cancelPoll()
		<-polled
	}
	tracker.mu.Lock()
	fig.done = slices.Clone(tracker.done)
	fig.notDone = int64(len(tracker.pending))
	fig.failed = tracker.failed
	pollErr := tracker.pollErr
	doneIDs := slices.Clone(tracker.doneIDs)
	owners := tracker.owners
	tracker.mu.Unlock()
	slices.Sort(fig.done)
	if pollErr != nil {
		return *fig, fmt.Errorf("time-to-done poller: %w", pollErr)
	}
	logf("ECG time to done at %.0f uploads/s: %d done, %d not done within %s, %d failed; p50 %s p99 %s max %s; uploads started up to %s late",
		fig.paceRate, len(fig.done), fig.notDone, ecgDoneWait, fig.failed, roundDur(shedPercentile(fig.done, 0.5)),
		roundDur(shedPercentile(fig.done, 0.99)), roundDur(maxOf(fig.done)), roundDur(late))

	// Every ECG the poller saw done is read back through the API, after the measurement.
	var confirmed atomic.Int64
	check := drive(ctx, "ECG insights check", bounds{clients: min(r.opts.clients, max(len(doneIDs), 1)), maxRequests: int64(len(doneIDs)), duration: 10 * time.Minute}, 0,
		func(ctx context.Context, w *worker, seq int64) (bool, error) {
			id := doneIDs[seq]
			in, err := r.insightsOf(ctx, w, owners[id], id)
			if err == nil {
				err = in.check(doc)
			}
			if err != nil {
				return false, fmt.Errorf("ECG %s: %w", id, err)
			}
			confirmed.Add(1)
			return false, nil
		})
	fig.confirmed, fig.confirmErr = confirmed.Load(), check.FirstError
	return *fig, ctx.Err()
}

// pacedOp performs one paced operation, due at its scheduled start.
type pacedOp func(ctx context.Context, w *worker, seq int64, due time.Time) error

// paced runs n operations open-loop: the i-th is due at start + i/rate whatever the earlier
// ones are doing, with at most inFlight at once (an operation waiting for a slot starts
// late). Each latency runs from the operation's due time, so time spent late counts. It
// returns the result and how late the latest start was.
func paced(ctx context.Context, name string, rate float64, n int64, inFlight, pid int, fn pacedOp) (result, time.Duration) {
	var (
		mu       sync.Mutex
		lat      []time.Duration
		errs     int64
		firstMsg string
		late     time.Duration
		wg       sync.WaitGroup
	)
	slots := make(chan struct{}, inFlight)
	sampler := startRSS(pid)
	cpu := startCPU(pid)
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
		}
		if ctx.Err() != nil {
			break
		}
		slots <- struct{}{}
		late = max(late, time.Since(due))
		wg.Go(func() {
			defer func() { <-slots }()
			w := &worker{id: int(i)}
			err := fn(ctx, w, i, due)
			took := time.Since(due)
			mu.Lock()
			defer mu.Unlock()
			lat = append(lat, took)
			if err != nil {
				errs++
				if firstMsg == "" {
					firstMsg = err.Error()
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	procCPU, selfCPU, machineCPU := cpu.finish()
	slices.Sort(lat)
	res := result{
		Name: name, Clients: inFlight, Requests: int64(len(lat)), Errors: errs, Elapsed: elapsed, FirstError: firstMsg,
		Unit: "req", ProcCPU: procCPU, SelfCPU: selfCPU, MachineCPU: machineCPU, lat: lat,
	}
	res.setPercentiles()
	res.PeakRSS = sampler.finish()
	return res, late
}

// ecgGet checks one GET of the typical ECG sample by sample, then measures GET of the ECGs
// each user uploaded.
func (r *runner) ecgGet(ctx context.Context, fig *ecgFigures, doc ecgDoc, ids [][]string) error {
	if len(ids) == 0 || len(ids[0]) == 0 {
		return errors.New("no uploaded ECG to read")
	}
	w := &worker{}
	resp, err := call(ctx, r.client, w, http.MethodGet, r.server.base+"/api/v1/ecgs/"+url.PathEscape(ids[0][0]), r.users[0].token, nil)
	if err != nil {
		return err
	}
	if err := expect(resp, w, http.StatusOK); err != nil {
		return err
	}
	var got struct {
		Leads []struct {
			Name    string  `json:"name"`
			Samples int     `json:"samples"`
			Signal  []int32 `json:"signal"`
		} `json:"leads"`
	}
	if err := json.Unmarshal(w.buf.Bytes(), &got); err != nil {
		return fmt.Errorf("GET ECG: %w", err)
	}
	if len(got.Leads) != doc.leads {
		return fmt.Errorf("GET ECG: %d leads, want %d", len(got.Leads), doc.leads)
	}
	for i, l := range got.Leads {
		if l.Name != ecgLeadNames[i] || l.Samples != doc.samples || !slices.Equal(l.Signal, doc.signals[i]) {
			return fmt.Errorf("GET ECG: lead %d (%s, %d samples) differs from the upload", i, l.Name, l.Samples)
		}
	}
	size := w.buf.Len()
	fig.get = r.record(r.driveServer(ctx, fmt.Sprintf("get ECG %d×%d with signals (%d KB)", doc.leads, doc.samples, size/1000), r.bounds(),
		func(ctx context.Context, w *worker, seq int64) (bool, error) {
			i := w.id % len(r.users)
			if len(ids[i]) == 0 {
				return false, fmt.Errorf("user %d uploaded no ECG", i)
			}
			id := ids[i][int(seq)%len(ids[i])]
			resp, err := call(ctx, r.client, w, http.MethodGet, r.server.base+"/api/v1/ecgs/"+url.PathEscape(id), r.users[i].token, nil)
			if err != nil {
				return false, err
			}
			if err := expect(resp, w, http.StatusOK); err != nil {
				return false, err
			}
			// The size varies by a few bytes with the ECG's created_at; the leads and the end of
			// the document tell a whole answer.
			body := w.buf.Bytes()
			if n := bytes.Count(body, []byte(`"signal":[`)); n != doc.leads || !bytes.HasSuffix(body, []byte("]}]}\n")) || len(body) < size-64 || len(body) > size+64 {
				return false, fmt.Errorf("GET ECG %s: %d bytes with %d signals, want about %d with %d", id, len(body), n, size, doc.leads)
			}
			return false, nil
		}), false)
	return ctx.Err()
}

// ecgLarge uploads -ecg-large-uploads bodies just under the body limit at once, one each,
// and measures the server's peak RSS; then it waits for their analyses, measuring the peak
// RSS meanwhile too.
func (r *runner) ecgLarge(ctx context.Context, fig *ecgFigures) error {
	t0 := time.Now()
	doc := makeLargeECG(fig.maxBody)
	fig.largeBytes, fig.largeSamples = len(doc.body), doc.samples
	logf("large ECG body: %d leads × %d samples, %d bytes (limit %d), made in %s", doc.leads, doc.samples, len(doc.body), fig.maxBody, time.Since(t0).Round(time.Millisecond))
	n := r.opts.ecgLargeUploads
	client := newLoadClient(n)
	client.timeout = ecgLargeTimeout
	defer client.CloseIdleConnections()
	var ok atomic.Int64
	name := fmt.Sprintf("ECG upload %.1f MiB (%d×%d), %d at once", float64(len(doc.body))/(1<<20), doc.leads, doc.samples, n)
	// The scenario's bound is far longer than it takes: the profile covers its first minute.
	stopPerf := r.startPerf(ctx, name)
	waitProfile := r.startCPUProfile(ctx, name, ecgLargeProfile)
	res := drive(ctx, name, bounds{clients: n, maxRequests: int64(n), duration: ecgLargeTimeout}, r.server.pid(),
		func(ctx context.Context, w *worker, _ int64) (bool, error) {
			_, err := uploadECG(ctx, client, w, r.server.base, r.user(w), doc.body, http.StatusAccepted)
			if err == nil {
				ok.Add(1)
			}
			return false, err
		})
	stopPerf()
	waitProfile()
	fig.large = r.record(res, false)
	fig.largeOK = ok.Load()
	sampler := startRSS(r.server.pid())
	left, took, err := r.waitAnalysed(ctx, ecgDrainWait)
	fig.largeDrainRSS = sampler.finish()
	fig.largeLeft, fig.largeDrain = left, took
	if err != nil {
		logf("large ECG analyses: %v", err)
	}
	logf("large ECGs: %d of %d accepted; %d pending analysed in %s, peak RSS meanwhile %s", fig.largeOK, n, left, took.Round(time.Millisecond), mib(fig.largeDrainRSS))
	return ctx.Err()
}

// startECGCeiling writes the captured upload answer to dir and starts the ECG ceiling
// process; with a dsn, one that stores each body with one INSERT.
func startECGCeiling(ctx context.Context, dir string, cr capturedResponse, dsn string, poolSize int, limit int64) (*process, error) {
	env := []string{envECGCeilingLimit + "=" + strconv.FormatInt(limit, 10)}
	name := "ECG ceiling (bare net/http)"
	if dsn != "" {
		env = append(env, envECGCeilingDSN+"="+dsn, envECGCeilingPool+"="+strconv.Itoa(poolSize))
		name = "ECG upload ceiling (net/http + INSERT)"
	}
	return startCeiling(ctx, name, dir, "ecg-ceiling-response.json", cr, envECGCeilingAddr, envECGCeilingResponse, env)
}

// serveECGCeiling is the ECG ceiling process: a bare net/http server that reads each
// request's whole body (within the service's body limit, into a pooled buffer), stores it
// with one INSERT of the raw bytes when it has a database, and answers with the status,
// headers and body of a captured upload answer. Its pool is the service's: the same driver
// settings and size.
func serveECGCeiling() error {
	cr, err := readCaptured(os.Getenv(envECGCeilingResponse))
	if err != nil {
		return err
	}
	limit, err := strconv.ParseInt(os.Getenv(envECGCeilingLimit), 10, 64)
	if err != nil {
		return err
	}
	var db *sql.DB
	if dsn := os.Getenv(envECGCeilingDSN); dsn != "" {
		pool, _ := strconv.Atoi(os.Getenv(envECGCeilingPool))
		if db, err = openPool(dsn, max(pool, 1)); err != nil {
			return err
		}
		defer db.Close()
	}
	buffers := sync.Pool{New: func() any { return new(bytes.Buffer) }}
	handler := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/livez" {
			w.WriteHeader(http.StatusOK)
			return
		}
		buf, ok := buffers.Get().(*bytes.Buffer)
		if !ok {
			buf = new(bytes.Buffer)
		}
		defer buffers.Put(buf)
		buf.Reset()
		if _, err := buf.ReadFrom(http.MaxBytesReader(w, req.Body, limit)); err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		if db != nil {
			if _, err := db.ExecContext(req.Context(), insertECGCeilingSQL, buf.Bytes()); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		cr.write(w)
	})
	return listenCeiling(os.Getenv(envECGCeilingAddr), handler)
}

// Report.

func (f *ecgFigures) uploadRatio() float64 {
	if f.ceiling.Rate() == 0 {
		return 0
	}
	return f.upload.Rate() / f.ceiling.Rate()
}

// sustained is the uploads of the server's turns per second of those turns plus the time
// their analyses took after them: the rate at which uploads were also analysed.
func (f *ecgFigures) sustained() float64 {
	d := f.upload.Elapsed
	for _, t := range f.drain {
		d += t
	}
	if d <= 0 {
		return 0
	}
	return float64(f.upload.Requests) / d.Seconds()
}

func (f *ecgFigures) bareRatio() float64 {
	if f.bare.Rate() == 0 {
		return 0
	}
	return f.upload.Rate() / f.bare.Rate()
}

// checks are the ECG targets besides the upload ratio (which is in the report's ratios).
func (f *ecgFigures) checks() []check {
	if f == nil {
		return nil
	}
	at := f.at
	total := int64(len(at.done)) + at.notDone + at.failed
	p99 := shedPercentile(at.done, 0.99)
	out := []check{{
		name:     fmt.Sprintf("ECG time from upload to done, p99, uploads paced at %.1f × the ECG upload ceiling's throughput (%.0f/s)", ecgPaceFactor, at.paceRate),
		measured: at.text(),
		target:   "< " + ecgDoneTarget.String(),
		met: len(at.done) > 0 && p99 < ecgDoneTarget && at.notDone == 0 && at.failed == 0 && at.paced.Errors == 0 &&
			total == at.paced.Requests && at.confirmed == int64(len(at.done)),
	}}
	if f.large.Requests > 0 {
		out = append(out, check{
			name:     fmt.Sprintf("peak RSS while %d clients upload %.1f MiB ECGs (%d leads × %d samples)", f.large.Clients, float64(f.largeBytes)/(1<<20), largeLeads, f.largeSamples),
			measured: fmt.Sprintf("%s (%d of %d accepted with 202)", mib(f.large.PeakRSS), f.largeOK, f.large.Clients),
			target:   "< " + mib(peakRSSLimit),
			met:      f.large.PeakRSS > 0 && f.large.PeakRSS < peakRSSLimit && f.largeOK == int64(f.large.Clients),
		})
	}
	return out
}

// text sums a time-to-done run up in one line.
func (d doneRun) text() string {
	return fmt.Sprintf("p99 %s (p50 %s, max %s; %d of %d done, %d not done in %s, %d failed; %d of them confirmed through GET /insights)",
		roundDur(shedPercentile(d.done, 0.99)), roundDur(shedPercentile(d.done, 0.5)), roundDur(maxOf(d.done)), len(d.done), d.paced.Requests,
		d.notDone, ecgDoneWait, d.failed, d.confirmed)
}

func (f *ecgFigures) printText(w io.Writer) {
	if f == nil {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "ECG\tmeasured\n")
	fmt.Fprintf(tw, "upload / ECG upload ceiling\t%.3f (%.0f / %.0f per s)\n", f.uploadRatio(), f.upload.Rate(), f.ceiling.Rate())
	fmt.Fprintf(tw, "upload / bare net/http reading the body\t%.3f (%.0f / %.0f per s)\n", f.bareRatio(), f.upload.Rate(), f.bare.Rate())
	fmt.Fprintf(tw, "analysis backlog after each upload turn\t%s\n", backlogText(f))
	fmt.Fprintf(tw, "uploads analysed per s (turns + backlog time)\t%.0f per s (%.3f of the ceiling)\n", f.sustained(), f.sustained()/max(f.ceiling.Rate(), 1e-9))
	fmt.Fprintf(tw, "time to done at %.0f/s = %.1f × the ceiling\t%s\n", f.at.paceRate, ecgPaceFactor, f.at.text())
	fmt.Fprintf(tw, "time to done at %.0f/s = %.1f × the sustained rate\t%s\n", f.sustainable.paceRate, ecgPaceFactor, f.sustainable.text())
	fmt.Fprintf(tw, "time to done, idle, one at a time\t%s%s\n", durList(f.idle), errNote(f.idleErr))
	fmt.Fprintf(tw, "get ECG with signals\t%.0f per s\n", f.get.Rate())
	if f.large.Requests > 0 {
		fmt.Fprintf(tw, "large uploads\t%d of %d accepted in %s, peak RSS %s; analysed %s later, peak RSS then %s\n", f.largeOK, f.large.Clients,
			f.large.Elapsed.Round(time.Millisecond), mib(f.large.PeakRSS), f.largeDrain.Round(time.Millisecond), mib(f.largeDrainRSS))
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
}

func backlogText(f *ecgFigures) string {
	parts := make([]string, len(f.backlog))
	for i := range f.backlog {
		parts[i] = fmt.Sprintf("%d pending, analysed in %s", f.backlog[i], roundDur(f.drain[i]))
	}
	return strings.Join(parts, "; ")
}

func (f *ecgFigures) markdown(w io.Writer, opts options) {
	if f == nil {
		return
	}
	fmt.Fprintf(w, "## ECGs\n\n")
	fmt.Fprintf(w, "The ECG is generated by the runner: a heartbeat of about 72 per minute sampled at %d Hz (P, QRS and T waves, beats varying in length by up to 5 %%), "+
		"a slow breathing wander and a few µV of noise, scaled per lead and kept within ±2000; a typical upload is %d leads × %d samples, %d bytes of JSON. "+
		"The server runs with its default ECG settings (body limit %d bytes, %s analysis workers).\n\n",
		ecgSampleRate, typicalLeads, typicalSamples, f.typicalBytes, f.maxBody, f.workers)
	fmt.Fprintf(w, "| figure | measured |\n|---|---|\n")
	fmt.Fprintf(w, "| upload / ECG upload ceiling (target ≥ 0.6) | %.3f (%.0f / %.0f per s) |\n", f.uploadRatio(), f.upload.Rate(), f.ceiling.Rate())
	fmt.Fprintf(w, "| upload / bare net/http reading the same body, no database (information) | %.3f (%.0f / %.0f per s) |\n", f.bareRatio(), f.upload.Rate(), f.bare.Rate())
	fmt.Fprintf(w, "| analyses still pending at the end of each upload turn, and the time they then took | %s |\n", backlogText(f))
	fmt.Fprintf(w, "| uploads per s counting the time their analyses took after the turns (information) | %.0f per s (%.3f of the ceiling) |\n", f.sustained(), f.sustained()/max(f.ceiling.Rate(), 1e-9))
	for _, d := range []struct {
		run  doneRun
		what string
	}{{f.at, "the ECG upload ceiling's throughput above (target p99 < 1 s)"}, {f.sustainable, "the rate uploads and their analyses were sustained at above (information)"}} {
		fmt.Fprintf(w, "| time to done, uploads paced at %.0f/s = %.1f × %s | p50 %s, p99 %s, max %s over %d ECGs (%d not done within %s, %d failed); uploads answered p50 %s, p99 %s; the runner started an upload at most %s late; %d of %d read back through `GET /ecgs/{id}/insights` with the generated signal's insights%s |\n",
			d.run.paceRate, ecgPaceFactor, d.what, roundDur(shedPercentile(d.run.done, 0.5)), roundDur(shedPercentile(d.run.done, 0.99)), roundDur(maxOf(d.run.done)), len(d.run.done),
			d.run.notDone, ecgDoneWait, d.run.failed, roundDur(d.run.paced.P50), roundDur(d.run.paced.P99), roundDur(d.run.lateMax), d.run.confirmed, len(d.run.done), errNote(d.run.confirmErr))
	}
	fmt.Fprintf(w, "| time to done on the idle server, %d uploads one at a time, followed through `GET /insights` every 10 ms | %s%s |\n", ecgIdleUploads, durList(f.idle), errNote(f.idleErr))
	fmt.Fprintf(w, "| `GET /ecgs/{id}` of a %d × %d ECG with its signals (information) | %.0f per s, p50 %s, p99 %s |\n", typicalLeads, typicalSamples, f.get.Rate(), roundDur(f.get.P50), roundDur(f.get.P99))
	if f.large.Requests > 0 {
		fmt.Fprintf(w, "| %d clients each uploading one %d-byte ECG (%d leads × %d samples) at once | %d of %d accepted (202) in %s; server peak RSS %s |\n",
			f.large.Clients, f.largeBytes, largeLeads, f.largeSamples, f.largeOK, f.large.Clients, f.large.Elapsed.Round(time.Millisecond), mib(f.large.PeakRSS))
		fmt.Fprintf(w, "| their analyses, after the last upload was answered | %d pending, all done %s later; server peak RSS meanwhile %s |\n",
			f.largeLeft, f.largeDrain.Round(time.Millisecond), mib(f.largeDrainRSS))
	}
	fmt.Fprintf(w, "| ECGs whose analysis failed, whole run | %d |\n\n", f.failedTotal)
	fmt.Fprintf(w, "- Upload: `POST /api/v1/ecgs` of the same %d-byte body from %d keep-alive clients, client *i* as user *i* mod %d, each answer checked to be 202 with a pending summary. "+
		"In %d turns with the ceilings (same clients, same body, same client code, each turn -duration/-rounds). Each upload queues an analysis, which runs in the server beside the uploads; "+
		"after each of the server's turns the runner waits, outside the turn's timing, until no ECG is pending, so the ceilings' turns run on a quiet server.\n",
		f.typicalBytes, opts.clients, opts.users, opts.rounds)
	fmt.Fprintf(w, "- ECG upload ceiling: this runner started again as a process of its own, a bare `net/http` server with the service's timeouts that reads the whole body (within the service's limit, into a pooled buffer), "+
		"stores the raw bytes with one `INSERT INTO load_ecg_ceiling (body) VALUES (?)` (a `LONGBLOB` column in the run's database) through `database/sql` with the driver settings the service adds to its DSN and its pool size (%d), "+
		"and answers with the status, headers and body of an upload answer captured from the server. The information row is the same process without the INSERT. Neither authenticates the caller, as the service does with a database read per request.\n", f.pool)
	fmt.Fprintf(w, "- Time to done: uploads are started open-loop, the *i*-th due *i*/rate after the start whatever the earlier ones are doing (at most %d at once), for -duration (at most -requests uploads). "+
		"The rate is %.1f × the ECG upload ceiling's throughput in this run (the issue's \"80 %% of that throughput\"), then, for information, %.1f × the rate at which this run's uploads were also analysed. "+
		"A poller reads the status of every pending ECG from the run's database every %s in one indexed query (`SELECT ecg_key, status FROM ecgs WHERE ecg_key IN (…) AND status <> 'pending'`), "+
		"so following hundreds of ECGs costs the server no request; an ECG's time to done runs from its upload's due time to the first poll that sees it done (so it is at most %s late). "+
		"Afterwards every one of them is read through `GET /ecgs/{id}/insights`, which must say `done` with the generated signal's min, max, mean and zero crossings.\n",
		4*opts.clients, ecgPaceFactor, ecgPaceFactor, ecgPollInterval, ecgPollInterval)
	if f.large.Requests > 0 {
		fmt.Fprintf(w, "- Large uploads: one body of %d leads with as many samples as keep it under the body limit is generated once and sent by each of -ecg-large-uploads (%d) clients at once, once each, from memory; "+
			"each must be answered 202. The peak RSS is the server's during the uploads (VmHWM and VmRSS polled every 20 ms); the runner then waits for their analyses and reports the peak meanwhile too.\n",
			largeLeads, f.large.Clients)
	}
	fmt.Fprintln(w)
}
