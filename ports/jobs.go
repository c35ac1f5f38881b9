package ports

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Durable background work. A use case enqueues a job in the same unit of work as the data the
// job concerns, so the two commit or roll back together: there is never a job without its data
// nor data without its job. Workers of this instance or of any other sharing the database then
// claim the job with a lease, run it outside any request, and settle it. Delivery is at least
// once: a worker can die after its handler's effect and before settling, and the job then runs
// again once the lease has run out, so handlers make their effect idempotent, which is what
// turns "at least once" into "exactly once in effect".

// Limits of a job, shared by every JobQueue implementation so that they refuse the same jobs.
const (
	// MaxJobKindBytes bounds a job's kind, the name that selects its handler.
	MaxJobKindBytes = 64
	// MaxJobPayloadBytes bounds a payload. A job carries identifiers and small parameters, not
	// the data it works on, which stays in the rows the job concerns.
	MaxJobPayloadBytes = 64 << 10
	// DefaultJobMaxAttempts is the attempts a job gets when NewJob.MaxAttempts is 0. With the
	// worker's default backoff (1 s, doubling, less up to half for jitter) the waits between
	// them add up to 4 to 9 minutes; a job that must outlast longer outages asks for more.
	DefaultJobMaxAttempts = 10
	// MaxJobAttempts bounds NewJob.MaxAttempts, so that a job can never retry without end.
	MaxJobAttempts = 100
	// MaxJobReasonBytes bounds the stored reason of a failed attempt; CleanJobReason cuts
	// longer ones.
	MaxJobReasonBytes = 2000
)

var (
	// ErrInvalidJob is returned by Enqueue for a job outside the limits above; nothing is
	// stored. It is a programming error of the caller, not a client's.
	ErrInvalidJob = errors.New("invalid job")
	// ErrJobNotFound is returned by Lookup for a job that does not exist: never enqueued,
	// completed (completed jobs are deleted) or purged.
	ErrJobNotFound = errors.New("job not found")
	// ErrJobLeaseLost is returned when a worker acts on a job it no longer holds: its lease
	// ran out and another worker claimed the job, or the job was already settled. The worker
	// must stop working on it; whoever holds the job now settles it.
	ErrJobLeaseLost = errors.New("job lease lost")
	// ErrPermanentJob is what a job handler wraps when retrying cannot help (a payload that
	// does not decode, data that is damaged): the job is failed at once instead of retried.
	ErrPermanentJob = errors.New("permanent job failure")
)

// NewJob is a job to enqueue.
type NewJob struct {
	// Kind selects the handler, such as "user.cleanup"; 1 to MaxJobKindBytes bytes.
	Kind string
	// Payload is handed to the handler byte for byte; at most MaxJobPayloadBytes.
	Payload []byte
	// MaxAttempts is how many times the job may run before it is marked failed; 0 means
	// DefaultJobMaxAttempts.
	MaxAttempts int
	// RunAt is the earliest time the job may run; the zero time means now.
	RunAt time.Time
}

// Validate checks j against the limits above; the error wraps ErrInvalidJob.
func (j NewJob) Validate() error {
	switch {
	case j.Kind == "" || len(j.Kind) > MaxJobKindBytes:
		return fmt.Errorf("%w: kind must be 1 to %d bytes, got %d", ErrInvalidJob, MaxJobKindBytes, len(j.Kind))
	case !utf8.ValidString(j.Kind):
		return fmt.Errorf("%w: kind %q is not valid UTF-8", ErrInvalidJob, j.Kind)
	case len(j.Payload) > MaxJobPayloadBytes:
		return fmt.Errorf("%w: payload of %d bytes exceeds %d", ErrInvalidJob, len(j.Payload), MaxJobPayloadBytes)
	case j.MaxAttempts < 0 || j.MaxAttempts > MaxJobAttempts:
		return fmt.Errorf("%w: max attempts must be 0 (the default) to %d, got %d", ErrInvalidJob, MaxJobAttempts, j.MaxAttempts)
	}
	return nil
}

// Job is a claimed job, as a worker sees it.
type Job struct {
	ID      string
	Kind    string
	Payload []byte
	// Attempt numbers this run from 1. A run handed back at shutdown (Release) does not count.
	Attempt     int
	MaxAttempts int
	CreatedAt   time.Time
	// LastError is the reason the previous attempt failed; empty on a first attempt.
	LastError string
	// Lease identifies this claim. Only its holder can extend, complete, retry, fail or
	// release the job; once another worker has claimed the job again, every call made with
	// the old lease returns ErrJobLeaseLost.
	Lease string
	// LeaseExpires is when the job becomes claimable again unless the lease is extended.
	LeaseExpires time.Time
	// Spent marks a job whose attempts are used up but which was never settled: the worker
	// running its last attempt died (LastError says so), or the attempt was retried. It is
	// handed out once more only to be given up: its handler must not run again (the job may be
	// what killed the worker), and whoever claimed it settles it with Fail, after telling
	// whoever waits on the job's outcome, or with Retry to try that again later. A spent job
	// is never Released.
	Spent bool
}

// JobStatus is the state of a stored job. A completed job is deleted, so there is no done state.
type JobStatus string

// Job states.
const (
	// JobQueued: waiting until its due time, then claimable.
	JobQueued JobStatus = "queued"
	// JobRunning: claimed by a worker whose lease has not been settled.
	JobRunning JobStatus = "running"
	// JobFailed: out of attempts or failed permanently; never claimed again.
	JobFailed JobStatus = "failed"
)

// JobInfo is a stored job as Lookup reports it, for operators and tests.
type JobInfo struct {
	ID     string
	Kind   string
	Status JobStatus
	// Attempts counts the runs so far, the current one included while running.
	Attempts    int
	MaxAttempts int
	// LastError is why the last attempt failed; for a failed job, why it failed.
	LastError string
	// Worker is the worker that claimed the job last; empty before the first claim.
	Worker string
	// DueAt is when a queued job may run, or when a running job's lease expires; zero for a
	// failed job.
	DueAt     time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

// JobClaim asks a JobSource for work.
type JobClaim struct {
	// Worker names the claimant for operators (host, process); 1 to 255 bytes.
	Worker string
	// Kinds limits the claim to jobs this worker has handlers for; an empty list claims nothing.
	Kinds []string
	// Limit is the most jobs to claim at once; at least 1.
	Limit int
	// Lease is how long the jobs stay the worker's unless extended; positive.
	Lease time.Duration
}

// JobStats describes the jobs of one kind, for metrics.
type JobStats struct {
	Kind string
	// Queued counts jobs waiting to run, including those whose next attempt is not due yet.
	Queued int64
	// Running counts claimed jobs, including those whose worker died and whose lease has not
	// been reclaimed yet.
	Running int64
	// Failed counts jobs that used up their attempts or failed permanently, until purged.
	Failed int64
	// OldestQueuedAge is how long the job that has waited longest has been due without being
	// claimed; 0 when no job of the kind is due.
	OldestQueuedAge time.Duration
}

// JobQueue is what use cases use to enqueue work.
type JobQueue interface {
	// Enqueue writes job in scope, normally the transaction of UnitOfWork.Do, so the job
	// commits or rolls back with the rest of the unit of work. It returns the job's id. An
	// invalid job wraps ErrInvalidJob; a database outage wraps domain.ErrUnavailable.
	Enqueue(ctx context.Context, scope Scope, job NewJob) (string, error)
}

// JobSource is what workers use to take and settle jobs. Every method wraps
// domain.ErrUnavailable when the database cannot be reached.
type JobSource interface {
	// Claim takes up to c.Limit due jobs of c.Kinds, oldest due first, and leases them to
	// c.Worker. A job is due when its run time has come, or when it is claimed but its lease
	// has run out (its worker died). A job whose attempts are used up is never run again: it
	// is handed out with Spent set, attempts unchanged, to be given up and failed. Concurrent
	// claims, from this process or any other, never return the same job while its lease
	// lasts, and never wait for one another's claimed rows.
	Claim(ctx context.Context, c JobClaim) ([]Job, error)
	// Extend renews the lease to lease from now and returns when it now expires (the heartbeat
	// of a long job). ErrJobLeaseLost when the job is no longer held with job.Lease.
	Extend(ctx context.Context, job Job, lease time.Duration) (time.Time, error)
	// Complete removes the job: its work is done. ErrJobLeaseLost as for Extend.
	Complete(ctx context.Context, job Job) error
	// Retry queues the job again, due at at, recording reason (cut by CleanJobReason). The
	// attempt counts: a job retried on its last attempt is handed out Spent by the next Claim
	// that finds it due. ErrJobLeaseLost as for Extend.
	Retry(ctx context.Context, job Job, at time.Time, reason string) error
	// Fail marks the job failed for good with reason (cut by CleanJobReason); it is kept for
	// operators until purged and never claimed again. ErrJobLeaseLost as for Extend.
	Fail(ctx context.Context, job Job, reason string) error
	// Release hands the job back at once without counting the attempt, for a worker that is
	// stopping before the job finished. ErrJobLeaseLost as for Extend.
	Release(ctx context.Context, job Job) error
	// Stats counts jobs by kind; kinds without jobs are left out.
	Stats(ctx context.Context) ([]JobStats, error)
	// Lookup returns the stored state of a job; ErrJobNotFound when there is none.
	Lookup(ctx context.Context, id string) (JobInfo, error)
	// PurgeFailed deletes failed jobs last updated before before, and returns how many it
	// deleted. It bounds the table: completed jobs are deleted at once, failed ones are kept
	// this long for operators to read their reasons.
	PurgeFailed(ctx context.Context, before time.Time) (int, error)
}

// CleanJobReason makes reason storable: invalid UTF-8 is replaced (a MySQL utf8mb4 column
// refuses it, which would make the failure itself impossible to record), and a reason longer
// than MaxJobReasonBytes is cut on a character boundary.
func CleanJobReason(reason string) string {
	reason = strings.ToValidUTF8(reason, "\uFFFD")
	if len(reason) <= MaxJobReasonBytes {
		return reason
	}
	cut := MaxJobReasonBytes
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut]
}
