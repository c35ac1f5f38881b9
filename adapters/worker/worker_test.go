package worker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/postsvc/adapters/system"
	"github.com/acme/postsvc/adapters/worker"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/test/fakes"
)

// env is an in-memory job queue on the wall clock (the runner's timers are real) and a log
// that tests can read.
type env struct {
	store *fakes.Store
	jobs  *fakes.Jobs
	logs  *fakes.LogBuffer
	log   *slog.Logger
}

func newEnv() *env {
	store := fakes.NewStore()
	logs := &fakes.LogBuffer{}
	return &env{
		store: store, jobs: fakes.NewJobs(store, system.NewClock()), logs: logs,
		log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// fast are settings that keep the tests short.
func fast() worker.Settings {
	return worker.Settings{
		ID: "test-worker", Workers: 2, Lease: 5 * time.Second, PollInterval: 20 * time.Millisecond,
		ShutdownGrace: 5 * time.Second, RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond,
	}
}

func (e *env) enqueue(t *testing.T, job ports.NewJob) string {
	t.Helper()
	id, err := e.jobs.Enqueue(t.Context(), e.store.Pool(), job)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (e *env) runner(t *testing.T, s worker.Settings, handlers map[string]worker.Handler) *worker.Runner {
	t.Helper()
	return e.runnerOn(t, e.jobs, s, handlers)
}

func (e *env) runnerOn(t *testing.T, src ports.JobSource, s worker.Settings, handlers map[string]worker.Handler) *worker.Runner {
	t.Helper()
	r, err := worker.New(src, system.NewClock(), e.log, s, handlers)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// start runs r until the returned stop is called; stop cancels Run's context and returns how
// long Run took to return after that.
func start(t *testing.T, r *worker.Runner) (stop func() time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	var took time.Duration
	stop = func() time.Duration {
		once.Do(func() {
			cancel()
			began := time.Now()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not return after its context ended")
			}
			took = time.Since(began)
		})
		return took
	}
	t.Cleanup(func() { stop() })
	return stop
}

// eventually waits up to 10 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *env) gone(id string) func() bool {
	return func() bool {
		_, err := e.jobs.Lookup(context.Background(), id)
		return errors.Is(err, ports.ErrJobNotFound)
	}
}

func (e *env) status(id string, want ports.JobStatus) func() bool {
	return func() bool {
		info, err := e.jobs.Lookup(context.Background(), id)
		return err == nil && info.Status == want
	}
}

func (e *env) info(t *testing.T, id string) ports.JobInfo {
	t.Helper()
	info, err := e.jobs.Lookup(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// run records the calls of a handler.
type run struct {
	at        time.Time
	attempt   int
	lastError string
}

type recorder struct {
	mu   sync.Mutex
	runs []run
}

func (r *recorder) record(job ports.Job) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs = append(r.runs, run{at: time.Now(), attempt: job.Attempt, lastError: job.LastError})
	return len(r.runs)
}

func (r *recorder) all() []run {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]run(nil), r.runs...)
}

func TestNewRefusesBadSettings(t *testing.T) {
	e := newEnv()
	ok := func(context.Context, ports.Job) error { return nil }
	for name, c := range map[string]struct {
		s worker.Settings
		h map[string]worker.Handler
	}{
		"no workers":          {worker.Settings{Lease: time.Second, PollInterval: time.Second}, nil},
		"no lease":            {worker.Settings{Workers: 1, PollInterval: time.Second}, nil},
		"no poll interval":    {worker.Settings{Workers: 1, Lease: time.Second}, nil},
		"negative grace":      {worker.Settings{Workers: 1, Lease: time.Second, PollInterval: time.Second, ShutdownGrace: -1}, nil},
		"backoff upside down": {worker.Settings{Workers: 1, Lease: time.Second, PollInterval: time.Second, RetryMin: time.Minute, RetryMax: time.Second}, nil},
		"nil handler":         {fast(), map[string]worker.Handler{"k": nil}},
		"empty kind":          {fast(), map[string]worker.Handler{"": ok}},
		"give-up without handler": {worker.Settings{Workers: 1, Lease: time.Second, PollInterval: time.Second,
			GiveUp: map[string]worker.GiveUp{"other": ok}}, map[string]worker.Handler{"k": ok}},
	} {
		if _, err := worker.New(e.jobs, system.NewClock(), e.log, c.s, c.h); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

// TestRunsJobsOfItsKindsConcurrently checks that up to Workers jobs run at once, and that jobs
// of kinds without a handler are left alone.
func TestRunsJobsOfItsKindsConcurrently(t *testing.T) {
	e := newEnv()
	const workers = 3
	var started sync.WaitGroup
	started.Add(workers)
	barrier := make(chan struct{})
	go func() { started.Wait(); close(barrier) }()
	handler := func(ctx context.Context, _ ports.Job) error {
		started.Done()
		// Every job waits for all of them to have started, which they can only do if they
		// run at the same time.
		select {
		case <-barrier:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s := fast()
	s.Workers = workers
	var ids []string
	for range workers {
		ids = append(ids, e.enqueue(t, ports.NewJob{Kind: "k"}))
	}
	other := e.enqueue(t, ports.NewJob{Kind: "other"})
	start(t, e.runner(t, s, map[string]worker.Handler{"k": handler}))
	for _, id := range ids {
		eventually(t, "every job is done", e.gone(id))
	}
	if info := e.info(t, other); info.Status != ports.JobQueued || info.Attempts != 0 {
		t.Fatalf("a job without a handler was touched: %+v", info)
	}
}

// TestRetriesWithBackoff fails a job twice and checks the waits between attempts follow the
// backoff (RetryMin, then twice that, each less up to half for jitter), and that each attempt
// sees the previous attempt's error.
func TestRetriesWithBackoff(t *testing.T) {
	e := newEnv()
	rec := &recorder{}
	handler := func(_ context.Context, job ports.Job) error {
		if n := rec.record(job); n < 3 {
			return fmt.Errorf("boom %d", n)
		}
		return nil
	}
	s := fast()
	s.RetryMin, s.RetryMax = 200*time.Millisecond, time.Second
	id := e.enqueue(t, ports.NewJob{Kind: "k"})
	r := e.runner(t, s, map[string]worker.Handler{"k": handler})
	start(t, r)
	eventually(t, "the job is done", e.gone(id))
	eventually(t, "the outcomes are counted", func() bool {
		o := r.Outcomes()
		return o[[2]string{"k", "retried"}] == 2 && o[[2]string{"k", "done"}] == 1
	})

	runs := rec.all()
	if len(runs) != 3 {
		t.Fatalf("%d attempts, want 3", len(runs))
	}
	for i, want := range []run{{attempt: 1}, {attempt: 2, lastError: "boom 1"}, {attempt: 3, lastError: "boom 2"}} {
		if runs[i].attempt != want.attempt || runs[i].lastError != want.lastError {
			t.Errorf("run %d: attempt %d after %q, want attempt %d after %q", i, runs[i].attempt, runs[i].lastError, want.attempt, want.lastError)
		}
	}
	if gap := runs[1].at.Sub(runs[0].at); gap < 100*time.Millisecond {
		t.Errorf("second attempt %s after the first, want at least 100ms (200ms less jitter)", gap)
	}
	if gap := runs[2].at.Sub(runs[1].at); gap < 200*time.Millisecond {
		t.Errorf("third attempt %s after the second, want at least 200ms (400ms less jitter)", gap)
	}
	if !strings.Contains(e.logs.String(), "will be retried") {
		t.Errorf("retries were not logged:\n%s", e.logs)
	}
}

func TestLastAttemptFailsWithItsError(t *testing.T) {
	e := newEnv()
	rec := &recorder{}
	handler := func(_ context.Context, job ports.Job) error {
		return fmt.Errorf("nope %d", rec.record(job))
	}
	id := e.enqueue(t, ports.NewJob{Kind: "k", MaxAttempts: 3})
	start(t, e.runner(t, fast(), map[string]worker.Handler{"k": handler}))
	eventually(t, "the job has failed", e.status(id, ports.JobFailed))
	if info := e.info(t, id); info.Attempts != 3 || info.LastError != "nope 3" {
		t.Fatalf("failed job %+v, want 3 attempts and the last error", info)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(rec.all()); n != 3 {
		t.Fatalf("the handler ran %d times, want 3", n)
	}
}

func TestPermanentErrorFailsAtOnce(t *testing.T) {
	e := newEnv()
	rec := &recorder{}
	cause := errors.New("payload does not decode")
	handler := func(_ context.Context, job ports.Job) error {
		rec.record(job)
		return fmt.Errorf("decoding: %w", worker.Permanent(cause))
	}
	id := e.enqueue(t, ports.NewJob{Kind: "k", MaxAttempts: 5})
	start(t, e.runner(t, fast(), map[string]worker.Handler{"k": handler}))
	eventually(t, "the job has failed", e.status(id, ports.JobFailed))
	if info := e.info(t, id); info.Attempts != 1 || info.LastError != "decoding: payload does not decode" {
		t.Fatalf("failed job %+v, want one attempt and the handler's error", info)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(rec.all()); n != 1 {
		t.Fatalf("the handler ran %d times, want 1", n)
	}
	if err := worker.Permanent(cause); !errors.Is(err, worker.ErrPermanent) || !errors.Is(err, cause) {
		t.Fatal("Permanent must keep both ErrPermanent and the cause reachable")
	}
	if worker.Permanent(nil) != nil {
		t.Fatal("Permanent(nil) must be nil")
	}
}

// TestPanicIsAFailedAttempt panics in a handler and checks that the attempt is retried, the
// panic logged with its stack, and the runner goes on with other jobs.
func TestPanicIsAFailedAttempt(t *testing.T) {
	e := newEnv()
	rec := &recorder{}
	handlers := map[string]worker.Handler{
		"panics": func(_ context.Context, job ports.Job) error {
			if rec.record(job) == 1 {
				panic("handler bug")
			}
			return nil
		},
		"fine": func(context.Context, ports.Job) error { return nil },
	}
	id := e.enqueue(t, ports.NewJob{Kind: "panics"})
	start(t, e.runner(t, fast(), handlers))
	eventually(t, "the job is done on its second attempt", e.gone(id))
	if runs := rec.all(); len(runs) != 2 || !strings.Contains(runs[1].lastError, "handler bug") {
		t.Fatalf("runs %+v, want a second attempt after the panic's error", runs)
	}
	next := e.enqueue(t, ports.NewJob{Kind: "fine"})
	eventually(t, "a later job is done", e.gone(next))
	logs := e.logs.String()
	if !strings.Contains(logs, "job handler panicked") || !strings.Contains(logs, "worker_test.go") {
		t.Fatalf("the panic was not logged with its stack:\n%s", logs)
	}
}

// TestStopLetsJobsInFlightFinish stops a runner while a job runs: the job finishes within the
// grace period and is done, and no further job is claimed.
func TestStopLetsJobsInFlightFinish(t *testing.T) {
	e := newEnv()
	running := make(chan struct{}, 1)
	var calls atomic.Int32
	handler := func(context.Context, ports.Job) error {
		calls.Add(1)
		running <- struct{}{}
		time.Sleep(300 * time.Millisecond)
		return nil
	}
	s := fast()
	s.Workers = 1
	first := e.enqueue(t, ports.NewJob{Kind: "k"})
	stop := start(t, e.runner(t, s, map[string]worker.Handler{"k": handler}))
	<-running
	second := e.enqueue(t, ports.NewJob{Kind: "k"})
	if took := stop(); took < 200*time.Millisecond || took > 3*time.Second {
		t.Errorf("Run returned %s after the stop; want it to wait for the job (300ms), no more", took)
	}
	if !e.gone(first)() {
		t.Errorf("the job in flight was not completed: %+v", e.info(t, first))
	}
	if info := e.info(t, second); info.Status != ports.JobQueued || info.Attempts != 0 {
		t.Errorf("a job was claimed after the stop: %+v", info)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("the handler ran %d times, want 1", n)
	}
}

// TestStopHandsBackJobsPastTheGrace stops a runner whose job outlasts the grace period: the
// job is cancelled and handed back uncounted, ready for another worker at once.
func TestStopHandsBackJobsPastTheGrace(t *testing.T) {
	e := newEnv()
	running := make(chan struct{}, 1)
	var cause atomic.Value
	handler := func(ctx context.Context, _ ports.Job) error {
		running <- struct{}{}
		<-ctx.Done()
		cause.Store(context.Cause(ctx))
		return ctx.Err()
	}
	s := fast()
	s.ShutdownGrace = 200 * time.Millisecond
	id := e.enqueue(t, ports.NewJob{Kind: "k"})
	stop := start(t, e.runner(t, s, map[string]worker.Handler{"k": handler}))
	<-running
	if took := stop(); took < 150*time.Millisecond || took > 2*time.Second {
		t.Errorf("Run returned %s after the stop, want about the 200ms grace", took)
	}
	if c, _ := cause.Load().(error); c == nil || !strings.Contains(c.Error(), "grace") {
		t.Errorf("the handler's context ended with %v, want the shutdown cause", c)
	}
	if info := e.info(t, id); info.Status != ports.JobQueued || info.Attempts != 0 {
		t.Fatalf("after the stop, the job is %+v; want it handed back uncounted", info)
	}
	jobs, err := e.jobs.Claim(t.Context(), ports.JobClaim{Worker: "next", Kinds: []string{"k"}, Limit: 1, Lease: time.Minute})
	if err != nil || len(jobs) != 1 || jobs[0].Attempt != 1 {
		t.Fatalf("another worker could not take the job at once, on its first attempt: %v, %+v", err, jobs)
	}
}

// TestStopDoesNotWaitForHandlersThatIgnoreCancellation checks that a handler that never
// returns holds shutdown up only for the grace period plus a second, and its job is handed back.
func TestStopDoesNotWaitForHandlersThatIgnoreCancellation(t *testing.T) {
	e := newEnv()
	running, never := make(chan struct{}, 1), make(chan struct{})
	t.Cleanup(func() { close(never) })
	handler := func(context.Context, ports.Job) error {
		running <- struct{}{}
		<-never
		return nil
	}
	s := fast()
	s.ShutdownGrace = 100 * time.Millisecond
	id := e.enqueue(t, ports.NewJob{Kind: "k"})
	stop := start(t, e.runner(t, s, map[string]worker.Handler{"k": handler}))
	<-running
	if took := stop(); took > 3*time.Second {
		t.Errorf("Run returned %s after the stop, want at most the grace period and a second", took)
	}
	if info := e.info(t, id); info.Status != ports.JobQueued || info.Attempts != 0 {
		t.Fatalf("after the stop, the job is %+v; want it handed back uncounted", info)
	}
}

// TestHeartbeatsKeepALongJobsLease runs a job for several leases while a second runner shares
// the queue: heartbeats must keep the job from being claimed again, so it runs exactly once.
func TestHeartbeatsKeepALongJobsLease(t *testing.T) {
	e := newEnv()
	var calls atomic.Int32
	handler := func(ctx context.Context, _ ports.Job) error {
		calls.Add(1)
		select {
		case <-time.After(900 * time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s := fast()
	s.Lease = 150 * time.Millisecond
	id := e.enqueue(t, ports.NewJob{Kind: "k"})
	handlers := map[string]worker.Handler{"k": handler}
	start(t, e.runner(t, s, handlers))
	start(t, e.runner(t, s, handlers))
	eventually(t, "the job is done", e.gone(id))
	if n := calls.Load(); n != 1 {
		t.Fatalf("the job ran %d times; heartbeats must keep it leased to its first worker", n)
	}
	if strings.Contains(e.logs.String(), "lease lost") {
		t.Fatalf("a lease was lost:\n%s", e.logs)
	}
}

// stolen is a job source whose leases are always lost on the first heartbeat, as when another
// worker reclaimed the job after this one stalled.
type stolen struct {
	ports.JobSource
	completes atomic.Int32
}

func (s *stolen) Extend(context.Context, ports.Job, time.Duration) (time.Time, error) {
	return time.Time{}, fmt.Errorf("stolen: %w", ports.ErrJobLeaseLost)
}

func (s *stolen) Complete(ctx context.Context, job ports.Job) error {
	s.completes.Add(1)
	return s.JobSource.Complete(ctx, job)
}

// TestLostLeaseCancelsTheHandler checks that a handler whose lease was lost is cancelled, with
// a cause saying so, instead of running on beside the worker that holds the job now.
func TestLostLeaseCancelsTheHandler(t *testing.T) {
	e := newEnv()
	src := &stolen{JobSource: e.jobs}
	causes := make(chan error, 1)
	handler := func(ctx context.Context, _ ports.Job) error {
		select {
		case <-ctx.Done():
			causes <- context.Cause(ctx)
			return ctx.Err()
		case <-time.After(5 * time.Second):
			causes <- nil
			return nil
		}
	}
	s := fast()
	s.Lease = 150 * time.Millisecond
	e.enqueue(t, ports.NewJob{Kind: "k"})
	start(t, e.runnerOn(t, src, s, map[string]worker.Handler{"k": handler}))
	select {
	case c := <-causes:
		if c == nil || !strings.Contains(c.Error(), "lease") {
			t.Fatalf("the handler ended with cause %v, want the lost lease", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler was not cancelled")
	}
	if n := src.completes.Load(); n != 0 {
		t.Fatalf("a job whose lease was lost was completed %d times", n)
	}
}

// failingClaims fails the first claims as an unreachable database does.
type failingClaims struct {
	ports.JobSource
	failures atomic.Int32
}

func (f *failingClaims) Claim(ctx context.Context, c ports.JobClaim) ([]ports.Job, error) {
	if f.failures.Add(-1) >= 0 {
		return nil, fmt.Errorf("claim: %w", domain.ErrUnavailable)
	}
	return f.JobSource.Claim(ctx, c)
}

func TestClaimFailuresAreLoggedAndRetried(t *testing.T) {
	e := newEnv()
	src := &failingClaims{JobSource: e.jobs}
	src.failures.Store(3)
	id := e.enqueue(t, ports.NewJob{Kind: "k"})
	// What was logged when the job ran: the recovery comes before the jobs of the claim that
	// recovered (logged after them, it raced the test's read of the log once the job was done).
	var before atomic.Value
	start(t, e.runnerOn(t, src, fast(), map[string]worker.Handler{"k": func(context.Context, ports.Job) error {
		before.Store(e.logs.String())
		return nil
	}}))
	eventually(t, "the job is done once claims work again", e.gone(id))
	logs, _ := before.Load().(string)
	if strings.Count(logs, "claiming jobs failed") != 3 || !strings.Contains(logs, "claiming jobs works again") {
		t.Fatalf("claim failures and recovery were not logged before the job ran:\n%s", logs)
	}
}

// TestNotifyWakesAnIdleRunner lets a runner grow idle (its polls spaced towards a long poll
// interval), then enqueues and notifies: the job must run at once, not at the next poll.
func TestNotifyWakesAnIdleRunner(t *testing.T) {
	e := newEnv()
	done := make(chan time.Time, 1)
	s := fast()
	s.PollInterval = time.Minute
	r := e.runner(t, s, map[string]worker.Handler{"k": func(context.Context, ports.Job) error {
		done <- time.Now()
		return nil
	}})
	start(t, r)
	time.Sleep(1500 * time.Millisecond) // the polls are more than a second apart by now
	enqueued := time.Now()
	e.enqueue(t, ports.NewJob{Kind: "k"})
	r.Notify()
	select {
	case at := <-done:
		if d := at.Sub(enqueued); d > 500*time.Millisecond {
			t.Fatalf("the job ran %s after Notify", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Notify did not wake the runner")
	}
}

func TestPurgesOldFailedJobs(t *testing.T) {
	e := newEnv()
	s := fast()
	s.FailedRetention, s.PurgeInterval = time.Millisecond, 20*time.Millisecond
	id := e.enqueue(t, ports.NewJob{Kind: "k"})
	start(t, e.runner(t, s, map[string]worker.Handler{"k": func(context.Context, ports.Job) error {
		return worker.Permanent(errors.New("no"))
	}}))
	eventually(t, "the failed job is purged", e.gone(id))
	if !strings.Contains(e.logs.String(), "purged failed jobs") {
		t.Fatalf("the purge was not logged:\n%s", e.logs)
	}
}

func TestKinds(t *testing.T) {
	e := newEnv()
	h := func(context.Context, ports.Job) error { return nil }
	r := e.runner(t, fast(), map[string]worker.Handler{"b": h, "a": h})
	if got := r.Kinds(); strings.Join(got, ",") != "a,b" {
		t.Fatalf("Kinds = %v", got)
	}
}

// TestSpentJobIsGivenUpNotRun: a job whose worker died on its last attempt is never run again;
// its kind's GiveUp hook is told (and told again after a backoff when it fails), then the job
// is failed with the reason it was spent.
func TestSpentJobIsGivenUpNotRun(t *testing.T) {
	e := newEnv()
	id := e.enqueue(t, ports.NewJob{Kind: "k", MaxAttempts: 1})
	// The last (and only) attempt's worker dies: it claims and never settles.
	claimed, err := e.jobs.Claim(t.Context(), ports.JobClaim{Worker: "dead", Kinds: []string{"k"}, Limit: 1, Lease: time.Millisecond})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v, %v", claimed, err)
	}
	time.Sleep(5 * time.Millisecond)
	ran, told := &recorder{}, &recorder{}
	s := fast()
	s.GiveUp = map[string]worker.GiveUp{"k": func(_ context.Context, job ports.Job) error {
		if !job.Spent {
			t.Errorf("give-up hook told of a job that is not spent: %+v", job)
		}
		if told.record(job) == 1 {
			return errors.New("database away")
		}
		return nil
	}}
	start(t, e.runner(t, s, map[string]worker.Handler{"k": func(_ context.Context, job ports.Job) error {
		ran.record(job)
		return nil
	}}))
	eventually(t, "the job has failed", e.status(id, ports.JobFailed))
	if n := len(ran.all()); n != 0 {
		t.Fatalf("the handler of a spent job ran %d times", n)
	}
	calls := told.all()
	if len(calls) != 2 || calls[0].attempt != 1 || !strings.Contains(calls[0].lastError, "lease") {
		t.Fatalf("give-up hook calls %+v, want two (the first failed), at attempt 1, naming the lease", calls)
	}
	if info := e.info(t, id); info.Attempts != 1 || !strings.Contains(info.LastError, "lease") {
		t.Fatalf("given-up job %+v, want 1 attempt and the lease's reason", info)
	}
}

// TestSpentJobWithoutGiveUpIsFailed: a kind without a hook has its spent jobs failed too.
func TestSpentJobWithoutGiveUpIsFailed(t *testing.T) {
	e := newEnv()
	id := e.enqueue(t, ports.NewJob{Kind: "k", MaxAttempts: 1})
	if _, err := e.jobs.Claim(t.Context(), ports.JobClaim{Worker: "dead", Kinds: []string{"k"}, Limit: 1, Lease: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	ran := &recorder{}
	start(t, e.runner(t, fast(), map[string]worker.Handler{"k": func(_ context.Context, job ports.Job) error {
		ran.record(job)
		return nil
	}}))
	eventually(t, "the job has failed", e.status(id, ports.JobFailed))
	if n := len(ran.all()); n != 0 {
		t.Fatalf("the handler of a spent job ran %d times", n)
	}
}

// countingClaims counts the claims that found work.
type countingClaims struct {
	ports.JobSource
	mu     sync.Mutex
	claims []int
}

func (c *countingClaims) Claim(ctx context.Context, cl ports.JobClaim) ([]ports.Job, error) {
	jobs, err := c.JobSource.Claim(ctx, cl)
	if len(jobs) > 0 {
		c.mu.Lock()
		c.claims = append(c.claims, len(jobs))
		c.mu.Unlock()
	}
	return jobs, err
}

// TestBacklogIsClaimedManyJobsAtATime: with a backlog, jobs that finish one after another do
// not cost a claim each; the runner gathers free slots and claims many jobs at once.
func TestBacklogIsClaimedManyJobsAtATime(t *testing.T) {
	e := newEnv()
	src := &countingClaims{JobSource: e.jobs}
	const jobs, workers = 96, 8
	var ids []string
	for range jobs {
		ids = append(ids, e.enqueue(t, ports.NewJob{Kind: "k"}))
	}
	var n atomic.Int32
	handler := func(context.Context, ports.Job) error {
		// Staggered: the jobs of one claim finish a millisecond or so apart.
		time.Sleep(time.Duration(n.Add(1)%workers) * 300 * time.Microsecond)
		return nil
	}
	s := fast()
	s.Workers = workers
	start(t, e.runnerOn(t, src, s, map[string]worker.Handler{"k": handler}))
	for _, id := range ids {
		eventually(t, "every job is done", e.gone(id))
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	// One claim per job freed would be about 90 claims; gathering half the slots makes at
	// most one per 4 jobs, with a few more when the gather's wait runs out first.
	if len(src.claims) > jobs/(workers/2)+6 {
		t.Fatalf("%d claims for %d jobs (sizes %v): a claim per freed slot", len(src.claims), jobs, src.claims)
	}
}

// TestStartLineSaysHowManyJobsRunAtOnce: the start line names the pool's slots as jobs that run
// at once. It said "workers", which for the ECG pool (analysis workers × the jobs a batch
// takes) read as 32 workers on a two-CPU machine.
func TestStartLineSaysHowManyJobsRunAtOnce(t *testing.T) {
	e := newEnv()
	s := fast()
	s.Workers = 3
	stop := start(t, e.runner(t, s, map[string]worker.Handler{"noop": func(context.Context, ports.Job) error { return nil }}))
	eventually(t, "the start line", func() bool { return strings.Contains(e.logs.String(), "job worker started") })
	stop()
	if line := e.logs.String(); !strings.Contains(line, "jobs_at_once=3") || strings.Contains(line, " workers=") {
		t.Fatalf("start line %q, want jobs_at_once=3 and no workers=", line)
	}
}
