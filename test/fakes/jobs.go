package fakes

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/acme/postsvc/ports"
)

// Jobs is an in-memory job queue (ports.JobQueue and ports.JobSource) over a Store. It passes
// the same contract suite as the database queue (test/contract), so a use-case test that
// checks "the upload enqueued its analysis in the same unit of work" means the same thing here
// as on MySQL: a job enqueued in a transaction that rolls back is never seen.
type Jobs struct {
	store *Store
	clock ports.Clock

	mu   sync.Mutex
	seq  int
	jobs map[string]*fakeJob
}

type fakeJob struct {
	info    ports.JobInfo
	payload []byte
	lease   string
}

var (
	_ ports.JobQueue  = (*Jobs)(nil)
	_ ports.JobSource = (*Jobs)(nil)
)

// NewJobs returns an empty queue whose transactions are those of store and whose times come
// from clock.
func NewJobs(store *Store, clock ports.Clock) *Jobs {
	return &Jobs{store: store, clock: clock, jobs: map[string]*fakeJob{}}
}

// Enqueue stores job in scope: at once on the pool's scope, or, inside UnitOfWork.Do, when and
// only if that transaction commits (fakes.AfterCommit); a rolled-back job is never seen.
func (j *Jobs) Enqueue(ctx context.Context, scope ports.Scope, job ports.NewJob) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if err := job.Validate(); err != nil {
		return "", err
	}
	if err := j.store.Injected(); err != nil {
		return "", err
	}
	now := j.now()
	fj := &fakeJob{
		info: ports.JobInfo{
			Kind: job.Kind, Status: ports.JobQueued, MaxAttempts: job.MaxAttempts,
			DueAt: now, CreatedAt: now, UpdatedAt: now,
		},
		payload: slices.Clone(job.Payload),
	}
	if fj.info.MaxAttempts == 0 {
		fj.info.MaxAttempts = ports.DefaultJobMaxAttempts
	}
	if !job.RunAt.IsZero() {
		fj.info.DueAt = job.RunAt.UTC().Truncate(time.Microsecond)
	}
	j.mu.Lock()
	j.seq++
	fj.info.ID = fmt.Sprintf("job-%08d", j.seq)
	j.mu.Unlock()
	err := AfterCommit(scope, func() {
		j.mu.Lock()
		j.jobs[fj.info.ID] = fj
		j.mu.Unlock()
	})
	if err != nil {
		return "", err
	}
	return fj.info.ID, nil
}

func (j *Jobs) now() time.Time { return j.clock.Now().UTC().Truncate(time.Microsecond) }

// Claim leases due jobs, oldest due first; see ports.JobSource.
func (j *Jobs) Claim(ctx context.Context, c ports.JobClaim) ([]ports.Job, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch {
	case c.Worker == "" || c.Limit < 1 || c.Lease <= 0:
		return nil, fmt.Errorf("fakes: invalid claim %+v", c)
	case len(c.Kinds) == 0:
		return nil, nil
	}
	if err := j.store.Injected(); err != nil {
		return nil, err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	now := j.now()
	var due []*fakeJob
	for _, fj := range j.jobs {
		if fj.info.Status != ports.JobFailed && !fj.info.DueAt.After(now) && slices.Contains(c.Kinds, fj.info.Kind) {
			due = append(due, fj)
		}
	}
	slices.SortFunc(due, func(a, b *fakeJob) int {
		return cmp.Or(a.info.DueAt.Compare(b.info.DueAt), cmp.Compare(a.info.ID, b.info.ID))
	})
	if len(due) > c.Limit {
		due = due[:c.Limit]
	}
	j.seq++
	lease := fmt.Sprintf("lease-%08d", j.seq)
	expires := now.Add(c.Lease).Truncate(time.Microsecond)
	var out []ports.Job
	for _, fj := range due {
		// A job with no attempts left is handed out Spent, to be given up, attempts unchanged.
		spent := fj.info.Attempts >= fj.info.MaxAttempts
		if spent && fj.info.Status == ports.JobRunning {
			fj.info.LastError = "the worker running its last attempt stopped renewing the lease"
		}
		fj.info.Status, fj.info.DueAt, fj.lease, fj.info.Worker, fj.info.UpdatedAt = ports.JobRunning, expires, lease, c.Worker, now
		if !spent {
			fj.info.Attempts++
		}
		out = append(out, ports.Job{
			ID: fj.info.ID, Kind: fj.info.Kind, Payload: slices.Clone(fj.payload),
			Attempt: fj.info.Attempts, MaxAttempts: fj.info.MaxAttempts,
			CreatedAt: fj.info.CreatedAt, LastError: fj.info.LastError,
			Lease: lease, LeaseExpires: expires, Spent: spent,
		})
	}
	return out, nil
}

// held runs fn on the job while job.Lease still holds it; ErrJobLeaseLost otherwise.
func (j *Jobs) held(ctx context.Context, job ports.Job, fn func(fj *fakeJob, now time.Time)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := j.store.Injected(); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	fj, ok := j.jobs[job.ID]
	if !ok || fj.info.Status != ports.JobRunning || fj.lease != job.Lease {
		return fmt.Errorf("fakes: job %s: %w", job.ID, ports.ErrJobLeaseLost)
	}
	fn(fj, j.now())
	return nil
}

// Extend renews the lease; see ports.JobSource.
func (j *Jobs) Extend(ctx context.Context, job ports.Job, lease time.Duration) (time.Time, error) {
	var expires time.Time
	err := j.held(ctx, job, func(fj *fakeJob, now time.Time) {
		expires = now.Add(lease).Truncate(time.Microsecond)
		fj.info.DueAt, fj.info.UpdatedAt = expires, now
	})
	return expires, err
}

// Complete deletes the job; see ports.JobSource.
func (j *Jobs) Complete(ctx context.Context, job ports.Job) error {
	return j.held(ctx, job, func(fj *fakeJob, _ time.Time) { delete(j.jobs, fj.info.ID) })
}

// Retry queues the job again; see ports.JobSource.
func (j *Jobs) Retry(ctx context.Context, job ports.Job, at time.Time, reason string) error {
	return j.held(ctx, job, func(fj *fakeJob, now time.Time) {
		due := now
		if !at.IsZero() {
			due = at.UTC().Truncate(time.Microsecond)
		}
		fj.info.Status, fj.info.DueAt, fj.lease, fj.info.UpdatedAt = ports.JobQueued, due, "", now
		fj.info.LastError = ports.CleanJobReason(reason)
	})
}

// Fail marks the job failed; see ports.JobSource.
func (j *Jobs) Fail(ctx context.Context, job ports.Job, reason string) error {
	return j.held(ctx, job, func(fj *fakeJob, now time.Time) {
		fj.info.Status, fj.info.DueAt, fj.lease, fj.info.UpdatedAt = ports.JobFailed, time.Time{}, "", now
		fj.info.LastError = ports.CleanJobReason(reason)
	})
}

// Release hands the job back without counting the attempt; see ports.JobSource.
func (j *Jobs) Release(ctx context.Context, job ports.Job) error {
	return j.held(ctx, job, func(fj *fakeJob, now time.Time) {
		fj.info.Status, fj.info.DueAt, fj.lease, fj.info.UpdatedAt = ports.JobQueued, now, "", now
		fj.info.Attempts--
	})
}

// Stats counts jobs by kind; see ports.JobSource.
func (j *Jobs) Stats(ctx context.Context) ([]ports.JobStats, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	now := j.now()
	byKind := map[string]*ports.JobStats{}
	for _, fj := range j.jobs {
		s := byKind[fj.info.Kind]
		if s == nil {
			s = &ports.JobStats{Kind: fj.info.Kind}
			byKind[fj.info.Kind] = s
		}
		switch fj.info.Status {
		case ports.JobQueued:
			s.Queued++
			if !fj.info.DueAt.After(now) {
				s.OldestQueuedAge = max(s.OldestQueuedAge, now.Sub(fj.info.DueAt))
			}
		case ports.JobRunning:
			s.Running++
		case ports.JobFailed:
			s.Failed++
		}
	}
	out := make([]ports.JobStats, 0, len(byKind))
	for _, s := range byKind {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b ports.JobStats) int { return cmp.Compare(a.Kind, b.Kind) })
	return out, nil
}

// Lookup returns a job's state; see ports.JobSource.
func (j *Jobs) Lookup(ctx context.Context, id string) (ports.JobInfo, error) {
	if err := ctx.Err(); err != nil {
		return ports.JobInfo{}, err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	fj, ok := j.jobs[id]
	if !ok {
		return ports.JobInfo{}, fmt.Errorf("fakes: job %s: %w", id, ports.ErrJobNotFound)
	}
	return fj.info, nil
}

// PurgeFailed deletes failed jobs last updated before before; see ports.JobSource.
func (j *Jobs) PurgeFailed(ctx context.Context, before time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	n := 0
	for id, fj := range j.jobs {
		if fj.info.Status == ports.JobFailed && fj.info.UpdatedAt.Before(before) {
			delete(j.jobs, id)
			n++
		}
	}
	return n, nil
}

// RunDue runs, one after another, every due job of the kinds handlers knows, as a worker would,
// until none is left; it returns how many ran. A handler's error is retried later like a
// worker's would be, and returned.
func (j *Jobs) RunDue(ctx context.Context, handlers map[string]func(context.Context, ports.Job) error) (int, error) {
	kinds := make([]string, 0, len(handlers))
	for k := range handlers {
		kinds = append(kinds, k)
	}
	ran := 0
	for {
		claimed, err := j.Claim(ctx, ports.JobClaim{Worker: "fakes", Kinds: kinds, Limit: 1, Lease: time.Minute})
		if err != nil || len(claimed) == 0 {
			return ran, err
		}
		job := claimed[0]
		if job.Spent {
			// Given up, as a worker without a give-up hook would.
			if err := j.Fail(ctx, job, job.LastError); err != nil {
				return ran, err
			}
			continue
		}
		ran++
		if err := handlers[job.Kind](ctx, job); err != nil {
			_ = j.Retry(ctx, job, j.clock.Now().Add(time.Hour), err.Error())
			return ran, err
		}
		if err := j.Complete(ctx, job); err != nil {
			return ran, err
		}
	}
}
