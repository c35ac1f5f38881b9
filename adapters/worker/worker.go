// Package worker runs background jobs: it claims jobs from a ports.JobSource, runs the handler
// registered for their kind, keeps their lease alive while they run, and settles them: done,
// retried with backoff, failed after the last attempt, or handed back at shutdown. A job whose
// last attempt never settled (its worker died) is not run again but given up: the kind's
// GiveUp hook, if any, is told, and the job is failed.
//
// Delivery is at least once. A process can die after a handler's effect and before the job is
// settled; the job then runs again, here or on another instance, once its lease has run out.
// Handlers therefore make their effect idempotent (a conditional update, an upsert, a delete of
// what may already be gone), which is what makes a job take effect exactly once.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/acme/postsvc/ports"
)

// Handler runs one job. It returns nil when the job's work is done, an error to have the job
// retried (until its attempts are used up), or an error wrapping ErrPermanent (see Permanent)
// to fail it at once. ctx ends when the runner gives up on the job: its lease was lost to
// another worker, or the process is stopping and the grace period is over; the handler should
// then return promptly, and its job is handed back to run again.
type Handler func(ctx context.Context, job ports.Job) error

// GiveUp is told that a job of its kind will never run again: its last attempt's worker died
// (job.LastError says so) or that attempt was retried, so the job is Spent (see ports.Job).
// It records the outcome for whoever waits on the job, idempotently (it may be told twice),
// quickly and without the job's real work, which may be what killed the worker. An error has
// it called again after a backoff, unless it wraps ErrPermanent; the job is failed once it
// returns nil.
type GiveUp func(ctx context.Context, job ports.Job) error

// ErrPermanent marks a failure that retrying cannot fix, such as a payload that does not
// decode: the job is failed at once instead of retried. It is the kernel port's
// ports.ErrPermanentJob, so that use cases can return it without knowing this package.
var ErrPermanent = ports.ErrPermanentJob

// Permanent wraps err so that errors.Is(result, ErrPermanent) holds and err stays reachable
// with errors.Is and errors.As. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

type permanentError struct{ err error }

func (e permanentError) Error() string   { return e.err.Error() }
func (e permanentError) Unwrap() []error { return []error{ErrPermanent, e.err} }

// Settings tune a Runner. Zero values of the optional fields take the defaults named.
type Settings struct {
	// ID names this runner on the jobs it claims, for operators; default host/pid/random.
	ID string
	// Workers is how many jobs run at once; at least 1.
	Workers int
	// Lease is how long a claimed job stays this runner's without a heartbeat; heartbeats
	// renew it every third of it while the handler runs. A job whose runner died is claimed
	// again this long after its last heartbeat.
	Lease time.Duration
	// PollInterval is the longest wait between two looks for work while idle.
	PollInterval time.Duration
	// ShutdownGrace is how long jobs in flight may take to finish once Run's context ends.
	ShutdownGrace time.Duration
	// RetryMin and RetryMax bound the backoff before a failed job's next attempt: RetryMin
	// after the first attempt, doubling with each attempt up to RetryMax, with jitter taking
	// it down by up to half so that jobs that failed together do not retry together.
	// Defaults 1s and 10m.
	RetryMin, RetryMax time.Duration
	// FailedRetention is how long failed jobs are kept for operators before this runner
	// purges them; 0 never purges.
	FailedRetention time.Duration
	// PurgeInterval is how often failed jobs are purged; default 1h.
	PurgeInterval time.Duration
	// GiveUp holds, by kind, what is told when a job of that kind is given up; kinds without
	// one are failed silently (the log and the failed job say why). Each kind needs a handler.
	GiveUp map[string]GiveUp
}

// Defaults of the optional settings.
const (
	defaultRetryMin      = time.Second
	defaultRetryMax      = 10 * time.Minute
	defaultPurgeInterval = time.Hour
)

// Timing that is not worth a setting.
const (
	// quickPoll is the first wait after a look for work that found some or after Notify; it
	// doubles up to PollInterval while nothing is found. A job enqueued by this process is
	// usually committed within it.
	quickPoll = 20 * time.Millisecond
	// maxFailingPoll bounds the wait between looks for work while claiming fails (the
	// database is unreachable), so that work resumes soon after it comes back.
	maxFailingPoll = 30 * time.Second
	// gatherWait bounds how long, while there is a backlog, the dispatcher waits for half its
	// slots to be free before claiming. Jobs finish one by one; claiming for each slot as it
	// frees made one claim transaction per job, where waiting this long makes one for many.
	gatherWait = 5 * time.Millisecond
	// abandonAfter is how long a handler gets to return once its context is cancelled at the
	// end of the grace period. A handler that ignores its context does not hold up shutdown:
	// its job is handed back anyway, and a handler whose effect is idempotent makes running it
	// again elsewhere harmless.
	abandonAfter = time.Second
	// settleTimeout bounds recording a job's outcome. It is not tied to Run's context, so
	// outcomes are recorded during shutdown too.
	settleTimeout = 5 * time.Second
)

// Causes with which the runner cancels a handler's context.
var (
	errShutdown  = errors.New("worker: stopping, the shutdown grace period is over")
	errLeaseLost = errors.New("worker: the job's lease was lost")
)

// Runner claims and runs jobs; see the package documentation.
type Runner struct {
	src      ports.JobSource
	clock    ports.Clock
	log      *slog.Logger
	s        Settings
	handlers map[string]Handler
	kinds    []string
	wake     chan struct{}
	// jitter returns a number in [0, 1); tests replace it.
	jitter func() float64
	// outcomes counts the attempts this runner settled, by kind and outcome.
	outcomesMu sync.Mutex
	outcomes   map[[2]string]int64
}

// Outcomes returns how many attempts this runner has settled since it started, by job kind
// and outcome ("done", "retried", "failed", "handed back"), for a metrics counter.
func (r *Runner) Outcomes() map[[2]string]int64 {
	r.outcomesMu.Lock()
	defer r.outcomesMu.Unlock()
	return maps.Clone(r.outcomes)
}

func (r *Runner) count(kind, outcome string) {
	r.outcomesMu.Lock()
	defer r.outcomesMu.Unlock()
	if r.outcomes == nil {
		r.outcomes = map[[2]string]int64{}
	}
	r.outcomes[[2]string{kind, outcome}]++
}

// New returns a runner of handlers, by job kind, over src. It claims only jobs of those kinds.
// A runner without handlers claims nothing and only purges failed jobs.
func New(src ports.JobSource, clock ports.Clock, logger *slog.Logger, s Settings, handlers map[string]Handler) (*Runner, error) {
	switch {
	case s.Workers < 1:
		return nil, fmt.Errorf("worker: at least one worker is needed, got %d", s.Workers)
	case s.Lease <= 0 || s.PollInterval <= 0:
		return nil, fmt.Errorf("worker: lease (%s) and poll interval (%s) must be positive", s.Lease, s.PollInterval)
	case s.ShutdownGrace < 0 || s.FailedRetention < 0 || s.RetryMin < 0 || s.RetryMax < 0 || s.PurgeInterval < 0:
		return nil, errors.New("worker: durations must not be negative")
	}
	if s.RetryMin == 0 {
		s.RetryMin = defaultRetryMin
	}
	if s.RetryMax == 0 {
		s.RetryMax = max(defaultRetryMax, s.RetryMin)
	}
	if s.RetryMax < s.RetryMin {
		return nil, fmt.Errorf("worker: the longest retry backoff (%s) is below the shortest (%s)", s.RetryMax, s.RetryMin)
	}
	if s.PurgeInterval == 0 {
		s.PurgeInterval = defaultPurgeInterval
	}
	if s.ID == "" {
		s.ID = defaultID()
	}
	for kind, g := range s.GiveUp {
		if g == nil || handlers[kind] == nil {
			return nil, fmt.Errorf("worker: the give-up hook of %q is nil or has no handler", kind)
		}
	}
	for kind, h := range handlers {
		if h == nil {
			return nil, fmt.Errorf("worker: the handler of %q is nil", kind)
		}
		if err := (ports.NewJob{Kind: kind}).Validate(); err != nil {
			return nil, fmt.Errorf("worker: handler kind: %w", err)
		}
	}
	s.GiveUp = maps.Clone(s.GiveUp)
	return &Runner{
		src: src, clock: clock, log: logger.With("worker", s.ID), s: s,
		handlers: maps.Clone(handlers),
		kinds:    slices.Sorted(maps.Keys(handlers)),
		wake:     make(chan struct{}, 1),
		jitter:   rand.Float64,
	}, nil
}

// defaultID names the runner after its host and process, with a random suffix so that two
// runners in one process (or a restarted process reusing a pid) are told apart.
func defaultID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return fmt.Sprintf("%.200s/%d/%04x", host, os.Getpid(), rand.N(1<<16))
}

// Kinds returns the job kinds this runner has handlers for, sorted.
func (r *Runner) Kinds() []string { return slices.Clone(r.kinds) }

// Notify tells the runner that a job was just enqueued, so that it looks for work at once and
// then again at short intervals instead of at its next poll. It never blocks. Wire it to the
// queue's enqueue hook: the job is not committed yet when it is called, and the short
// intervals that follow catch the commit.
func (r *Runner) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run claims and runs jobs until ctx ends. Then it stops claiming, lets the jobs in flight
// finish within the shutdown grace period, cancels those still running after it and hands
// their jobs back so another instance takes them at once, and returns nil. Run is not meant to
// be called again while it runs.
func (r *Runner) Run(ctx context.Context) error {
	// hard outlives ctx by the grace period; handlers run under it.
	hard, stopHard := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopHard(nil)
	slots := make(chan struct{}, r.s.Workers)
	var inflight, background sync.WaitGroup
	if r.s.FailedRetention > 0 {
		background.Go(func() { r.purgeLoop(ctx) })
	}
	r.log.Info("job worker started", "kinds", r.kinds, "jobs_at_once", r.s.Workers)
	r.dispatch(ctx, hard, slots, &inflight)
	r.drain(slots, &inflight, stopHard)
	background.Wait()
	r.log.Info("job worker stopped")
	return nil
}

// dispatch claims as many jobs as there are free slots and starts each, until ctx ends.
func (r *Runner) dispatch(ctx, hard context.Context, slots chan struct{}, inflight *sync.WaitGroup) {
	if len(r.kinds) == 0 {
		<-ctx.Done()
		return
	}
	idle, failing := quickPoll, time.Duration(0)
	backlog := false
	for {
		// Wait for a free slot (a job to finish, when all are busy), then take every free one.
		// After a claim that filled every slot it asked for there is likely more work: then
		// it first gathers half the slots, or waits gatherWait, so one claim serves many.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		free := 1
		if backlog {
			free += gather(ctx, slots, cap(slots)/2-1)
		}
	take:
		for free < cap(slots) {
			select {
			case slots <- struct{}{}:
				free++
			default:
				break take
			}
		}
		jobs, err := r.src.Claim(ctx, ports.JobClaim{Worker: r.s.ID, Kinds: r.kinds, Limit: free, Lease: r.s.Lease})
		for range free - len(jobs) {
			<-slots
		}
		// The recovery is logged before the claimed jobs start, so that it comes before
		// anything they log or do.
		if err == nil && failing > 0 {
			r.log.Info("claiming jobs works again")
			failing = 0
		}
		for _, job := range jobs {
			inflight.Go(func() {
				defer func() { <-slots }()
				r.process(hard, job)
			})
		}
		backlog = err == nil && len(jobs) == free
		var wait time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			failing = min(max(2*failing, r.s.PollInterval), max(maxFailingPoll, r.s.PollInterval))
			r.log.Warn("claiming jobs failed", "err", err, "retry_in", failing)
			wait = failing
		case len(jobs) == free:
			// Every slot found work: there may be more, so look again as soon as one frees.
			idle = quickPoll
			continue
		default:
			if len(jobs) > 0 {
				idle = quickPoll
			}
			wait = idle
			idle = min(2*idle, r.s.PollInterval)
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-r.wake:
			idle = quickPoll
		case <-ctx.Done():
			timer.Stop()
			return
		}
		timer.Stop()
	}
}

// gather waits until n more slots are free, for at most gatherWait, and returns how many it
// took.
func gather(ctx context.Context, slots chan struct{}, n int) int {
	if n <= 0 {
		return 0
	}
	timer := time.NewTimer(gatherWait)
	defer timer.Stop()
	got := 0
	for got < n {
		select {
		case slots <- struct{}{}:
			got++
		case <-timer.C:
			return got
		case <-ctx.Done():
			return got
		}
	}
	return got
}

// drain waits for the jobs in flight for the grace period, then cancels the rest, which hand
// their jobs back, and waits for that.
func (r *Runner) drain(slots chan struct{}, inflight *sync.WaitGroup, stopHard context.CancelCauseFunc) {
	done := make(chan struct{})
	go func() {
		inflight.Wait()
		close(done)
	}()
	if n := len(slots); n > 0 {
		r.log.Info("job worker stopping: waiting for jobs in flight", "jobs", n, "grace", r.s.ShutdownGrace)
	}
	grace := time.NewTimer(r.s.ShutdownGrace)
	defer grace.Stop()
	select {
	case <-done:
		return
	case <-grace.C:
	}
	r.log.Warn("job worker stopping: jobs still running after the grace period are cancelled and handed back",
		"jobs", len(slots), "grace", r.s.ShutdownGrace)
	stopHard(errShutdown)
	<-done
}

// process runs one claimed job to its end and records the outcome.
func (r *Runner) process(hard context.Context, job ports.Job) {
	log := r.log.With("job_id", job.ID, "job_kind", job.Kind, "attempt", job.Attempt, "max_attempts", job.MaxAttempts)
	if job.Spent {
		r.giveUp(log, job)
		return
	}
	started := time.Now()
	ctx, cancel := context.WithCancelCause(hard)
	defer cancel(nil)
	result := make(chan error, 1)
	go func() { result <- r.call(ctx, log, job) }()

	heartbeat := time.NewTicker(max(r.s.Lease/3, time.Millisecond))
	defer heartbeat.Stop()
	expires, lost := job.LeaseExpires, false
	var err error
	for running := true; running; {
		select {
		case err = <-result:
			running = false
		case <-heartbeat.C:
			if lost {
				continue
			}
			until, extendErr := r.src.Extend(hard, job, r.s.Lease)
			switch {
			case extendErr == nil:
				expires = until
			case errors.Is(extendErr, ports.ErrJobLeaseLost):
				lost = true
				log.Warn("job lease lost to another worker: cancelling the handler", "err", extendErr)
				cancel(errLeaseLost)
			default:
				log.Warn("could not extend the job's lease", "err", extendErr, "lease_expires", expires)
				if !r.clock.Now().Before(expires) {
					// Another worker may have claimed the job by now: stop rather than run
					// it twice at once.
					lost = true
					log.Warn("job lease ran out without a heartbeat: cancelling the handler")
					cancel(errLeaseLost)
				}
			}
		case <-hard.Done():
			cancel(errShutdown)
			abandon := time.NewTimer(abandonAfter)
			select {
			case err = <-result:
			case <-abandon.C:
				err = errors.New("the handler did not return after its context was cancelled")
				log.Warn("job handler ignores its cancelled context; handing the job back without waiting for it")
			}
			abandon.Stop()
			running = false
		}
	}
	r.settle(log, job, err, context.Cause(ctx), time.Since(started))
}

// call runs the job's handler, turning a panic into an error so that it counts as a failed
// attempt instead of crashing the process.
func (r *Runner) call(ctx context.Context, log *slog.Logger, job ports.Job) (err error) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("job handler panicked", "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	h, ok := r.handlers[job.Kind]
	if !ok {
		return fmt.Errorf("no handler for job kind %q", job.Kind)
	}
	return h(ctx, job)
}

// giveUp settles a Spent job without running it: it tells the kind's GiveUp hook, then fails
// the job with the reason it was spent. The hook runs under its own timeout, not the runner's
// context, so that a job given up during shutdown is still failed rather than handed back
// (handing a spent job back would give it an attempt it does not have). A hook that fails is
// called again after a backoff.
func (r *Runner) giveUp(log *slog.Logger, job ports.Job) {
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	var err error
	if g := r.s.GiveUp[job.Kind]; g != nil {
		err = r.callGiveUp(ctx, log, g, job)
	}
	var (
		settleErr error
		outcome   string
	)
	if err == nil || errors.Is(err, ErrPermanent) {
		outcome, settleErr = "failed", r.src.Fail(ctx, job, job.LastError)
		if settleErr == nil {
			log.Error("job given up: its last attempt did not settle", "reason", job.LastError, "give_up_err", err)
		}
	} else {
		delay := backoff(job.Attempt, r.s.RetryMin, r.s.RetryMax, r.jitter())
		outcome, settleErr = "retried", r.src.Retry(ctx, job, r.clock.Now().Add(delay), job.LastError)
		if settleErr == nil {
			log.Warn("job given up, but telling its kind failed; trying again later", "err", err, "retry_in", delay)
		}
	}
	switch {
	case settleErr == nil:
		r.count(job.Kind, outcome)
	case errors.Is(settleErr, ports.ErrJobLeaseLost):
		log.Warn("given-up job not settled: the lease was lost", "outcome", outcome)
	default:
		log.Error("given-up job not settled: it is given up again once its lease runs out", "outcome", outcome, "err", settleErr)
	}
}

// callGiveUp runs a give-up hook, turning a panic into an error.
func (r *Runner) callGiveUp(ctx context.Context, log *slog.Logger, g GiveUp, job ports.Job) (err error) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("give-up hook panicked", "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("give-up hook panicked: %v", p)
		}
	}()
	return g(ctx, job)
}

// settle records the outcome of a run. cause is why the runner cancelled the handler, if it
// did.
func (r *Runner) settle(log *slog.Logger, job ports.Job, err, cause error, took time.Duration) {
	// The outcome is recorded even while stopping: the handler's context may be over, but the
	// work it did must not be lost.
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	var (
		settleErr error
		outcome   string
	)
	switch {
	case err == nil:
		outcome, settleErr = "done", r.src.Complete(ctx, job)
		if settleErr == nil {
			log.Debug("job done", "took", took)
		}
	case errors.Is(cause, errShutdown) || errors.Is(cause, errLeaseLost):
		// The runner stopped the handler, so the attempt says nothing about the job: it is
		// handed back uncounted, if it is still ours.
		outcome, settleErr = "handed back", r.src.Release(ctx, job)
		if settleErr == nil {
			log.Info("job handed back unfinished", "reason", cause, "took", took)
		}
	case errors.Is(err, ErrPermanent) || job.Attempt >= job.MaxAttempts:
		outcome, settleErr = "failed", r.src.Fail(ctx, job, err.Error())
		if settleErr == nil {
			log.Error("job failed", "err", err, "permanent", errors.Is(err, ErrPermanent), "took", took)
		}
	default:
		delay := backoff(job.Attempt, r.s.RetryMin, r.s.RetryMax, r.jitter())
		outcome, settleErr = "retried", r.src.Retry(ctx, job, r.clock.Now().Add(delay), err.Error())
		if settleErr == nil {
			log.Warn("job attempt failed; it will be retried", "err", err, "retry_in", delay, "took", took)
		}
	}
	switch {
	case settleErr == nil:
		r.count(job.Kind, outcome)
	case errors.Is(settleErr, ports.ErrJobLeaseLost):
		log.Warn("job outcome not recorded: the lease was lost, and whoever holds the job now settles it",
			"outcome", outcome, "handler_err", err)
	default:
		log.Error("job outcome not recorded: the job runs again once its lease runs out",
			"outcome", outcome, "err", settleErr, "handler_err", err)
	}
}

// backoff is the wait before the attempt after attempt: lo doubled for each attempt after
// the first, capped at hi, then reduced by up to half by jitter (in [0, 1)).
func backoff(attempt int, lo, hi time.Duration, jitter float64) time.Duration {
	d := lo
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d - time.Duration(jitter*float64(d/2))
}

// purgeLoop deletes failed jobs older than the retention, shortly after start and then every
// purge interval. Every instance purges; the deletes are idempotent.
func (r *Runner) purgeLoop(ctx context.Context) {
	wait := min(r.s.PurgeInterval, time.Minute)
	for {
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		wait = r.s.PurgeInterval
		n, err := r.src.PurgeFailed(ctx, r.clock.Now().Add(-r.s.FailedRetention))
		switch {
		case err != nil && ctx.Err() == nil:
			r.log.Warn("purging failed jobs failed", "err", err)
		case n > 0:
			r.log.Info("purged failed jobs", "jobs", n, "older_than", r.s.FailedRetention)
		}
	}
}
