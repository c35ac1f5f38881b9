package contract

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/ports/accounts"
)

// JobsBackend is one job queue implementation under test, over the same storage as the
// repositories and unit of work it is used with.
type JobsBackend struct {
	UoW ports.UnitOfWork
	// Users is the accounts store, whose users stand for the data a job concerns.
	Users  accounts.Store
	Queue  ports.JobQueue
	Source ports.JobSource
	// Instance returns the job source of another instance sharing the storage: on a database,
	// one with a connection pool of its own, as a second server process would have. Every
	// instance uses the clock that RunJobs handed to newBackend.
	Instance func(t *testing.T) ports.JobSource
}

// RunJobs runs the job queue contract. newBackend must return a fresh, empty backend on every
// call whose queue and sources tell the time by clock; the tests move clock to expire leases
// and bring retries due. Each test calls it once, and the tests run in parallel.
func RunJobs(t *testing.T, newBackend func(t *testing.T, clock ports.Clock) JobsBackend) {
	tests := []namedJobTest{
		{"a job commits with the data of its unit of work", testJobCommitsWithData},
		{"a rolled-back unit of work leaves neither job nor data", testJobRollsBackWithData},
		{"enqueue on the pool commits at once", testJobEnqueueOnPool},
		{"payload and fields round-trip", testJobRoundTrip},
		{"invalid jobs are refused", testJobInvalid},
		{"claim takes due jobs of its kinds, oldest first, up to its limit", testJobClaimSelection},
		{"a leased job is claimable again only when its lease expires", testJobLeaseExpiry},
		{"extend keeps the lease", testJobExtend},
		{"retry honours its due time and keeps the reason", testJobRetry},
		{"the last attempt fails with a reason", testJobLastAttempt},
		{"a worker that dies on the last attempt fails the job", testJobDiesOnLastAttempt},
		{"release hands the job back without counting the attempt", testJobRelease},
		{"reasons are stored cleaned", testJobReasonCleaned},
		{"stats count jobs by kind and status", testJobStats},
		{"purge removes only failed jobs older than the cutoff", testJobPurge},
		{"concurrent claimers on several instances never share a job", testJobConcurrentClaims},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := newJobClock()
			tc.run(t, newBackend(t, clock), clock)
		})
	}
}

type namedJobTest struct {
	name string
	run  func(t *testing.T, b JobsBackend, clock *jobClock)
}

// jobClock is a settable clock. The suite keeps its own rather than using test/fakes, because
// it sees ports and domain only.
type jobClock struct {
	mu  sync.Mutex
	now time.Time
}

func newJobClock() *jobClock {
	return &jobClock{now: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}
}

func (c *jobClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *jobClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

const testLease = 30 * time.Second

// enqueue stores job on the pool's scope and returns its id.
func enqueue(t *testing.T, b JobsBackend, job ports.NewJob) string {
	t.Helper()
	id, err := b.Queue.Enqueue(t.Context(), b.UoW.Pool(), job)
	NoErr(t, "Enqueue", err)
	if id == "" {
		t.Fatal("Enqueue returned an empty id")
	}
	return id
}

// claim asks src for up to limit jobs of kinds for worker, with testLease.
func claim(t *testing.T, src ports.JobSource, worker string, limit int, kinds ...string) []ports.Job {
	t.Helper()
	jobs, err := src.Claim(t.Context(), ports.JobClaim{Worker: worker, Kinds: kinds, Limit: limit, Lease: testLease})
	NoErr(t, "Claim", err)
	return jobs
}

// claimOne claims exactly one job of kind, failing the test otherwise.
func claimOne(t *testing.T, src ports.JobSource, worker, kind string) ports.Job {
	t.Helper()
	jobs := claim(t, src, worker, 10, kind)
	if len(jobs) != 1 {
		t.Fatalf("%s claimed %d jobs, want 1: %v", worker, len(jobs), jobIDs(jobs))
	}
	return jobs[0]
}

// claimNone fails the test if src hands out any job of kinds.
func claimNone(t *testing.T, src ports.JobSource, worker string, kinds ...string) {
	t.Helper()
	if jobs := claim(t, src, worker, 10, kinds...); len(jobs) != 0 {
		t.Fatalf("%s claimed %v, want none", worker, jobIDs(jobs))
	}
}

func lookup(t *testing.T, b JobsBackend, id string) ports.JobInfo {
	t.Helper()
	info, err := b.Source.Lookup(t.Context(), id)
	NoErr(t, "Lookup "+id, err)
	return info
}

func assertGone(t *testing.T, b JobsBackend, id string) {
	t.Helper()
	_, err := b.Source.Lookup(t.Context(), id)
	WantErr(t, "Lookup of a settled job", err, ports.ErrJobNotFound)
}

func jobIDs(jobs []ports.Job) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}

func statsOf(t *testing.T, src ports.JobSource) map[string]ports.JobStats {
	t.Helper()
	list, err := src.Stats(t.Context())
	NoErr(t, "Stats", err)
	out := map[string]ports.JobStats{}
	for _, s := range list {
		if _, dup := out[s.Kind]; dup {
			t.Errorf("Stats lists kind %q twice", s.Kind)
		}
		out[s.Kind] = s
	}
	return out
}

func testJobCommitsWithData(t *testing.T, b JobsBackend, clock *jobClock) {
	ctx := t.Context()
	u := MakeUser(t, "jobs@x.io", "", identity.RoleUser)
	var id string
	err := b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		if err := b.Users.Users(tx).Add(ctx, u); err != nil {
			return err
		}
		var err error
		id, err = b.Queue.Enqueue(ctx, tx, ports.NewJob{Kind: "user.cleanup", Payload: []byte(u.ID())})
		return err
	})
	NoErr(t, "Do", err)
	_, err = b.Users.Users(b.UoW.Pool()).ByID(ctx, u.ID())
	NoErr(t, "the unit of work's data", err)
	job := claimOne(t, b.Source, "w1", "user.cleanup")
	if job.ID != id || string(job.Payload) != string(u.ID()) {
		t.Fatalf("claimed %s with payload %q, want %s with %q", job.ID, job.Payload, id, u.ID())
	}
	SameInstant(t, "created_at", job.CreatedAt, clock.Now())
}

func testJobRollsBackWithData(t *testing.T, b JobsBackend, _ *jobClock) {
	ctx := t.Context()
	u := MakeUser(t, "rollback-jobs@x.io", "", identity.RoleUser)
	var id string
	err := b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		if err := b.Users.Users(tx).Add(ctx, u); err != nil {
			return err
		}
		var err error
		if id, err = b.Queue.Enqueue(ctx, tx, ports.NewJob{Kind: "user.cleanup"}); err != nil {
			t.Errorf("Enqueue inside the unit of work: %v", err)
		}
		return errBoom
	})
	WantErr(t, "Do", err, errBoom)
	_, err = b.Users.Users(b.UoW.Pool()).ByID(ctx, u.ID())
	WantErr(t, "the rolled-back data", err, user.ErrNotFound)
	claimNone(t, b.Source, "w1", "user.cleanup")
	_, err = b.Source.Lookup(ctx, id)
	WantErr(t, "Lookup of a rolled-back job", err, ports.ErrJobNotFound)
	if s := statsOf(t, b.Source); len(s) != 0 {
		t.Fatalf("Stats after rollback = %+v, want nothing", s)
	}

	// A job the unit of work could not enqueue takes the data down with it.
	err = b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		if err := b.Users.Users(tx).Add(ctx, u); err != nil {
			return err
		}
		_, err := b.Queue.Enqueue(ctx, tx, ports.NewJob{Kind: ""})
		return err
	})
	WantErr(t, "Do with an invalid job", err, ports.ErrInvalidJob)
	_, err = b.Users.Users(b.UoW.Pool()).ByID(ctx, u.ID())
	WantErr(t, "data of a unit of work whose job failed", err, user.ErrNotFound)
}

func testJobEnqueueOnPool(t *testing.T, b JobsBackend, _ *jobClock) {
	id := enqueue(t, b, ports.NewJob{Kind: "media.sweep"})
	info := lookup(t, b, id)
	if info.Status != ports.JobQueued || info.Attempts != 0 || info.Kind != "media.sweep" || info.Worker != "" {
		t.Fatalf("Lookup = %+v, want a queued media.sweep job never claimed", info)
	}
	if got := claimOne(t, b.Instance(t), "other-instance", "media.sweep"); got.ID != id {
		t.Fatalf("another instance claimed %s, want %s", got.ID, id)
	}
}

func testJobRoundTrip(t *testing.T, b JobsBackend, clock *jobClock) {
	every := make([]byte, 256)
	for i := range every {
		every[i] = byte(i)
	}
	largest := make([]byte, ports.MaxJobPayloadBytes)
	_, _ = rand.Read(largest)
	payloads := map[string][]byte{
		"empty":            nil,
		"every byte value": every,
		"invalid UTF-8":    []byte("\xff\xfe\x00quote'\"backslash\\"),
		"largest":          largest,
	}
	ids := map[string]string{}
	for name, p := range payloads {
		ids[enqueue(t, b, ports.NewJob{Kind: "kind-" + strings.ReplaceAll(name, " ", "-"), Payload: p})] = name
	}
	explicit := enqueue(t, b, ports.NewJob{Kind: "explicit", MaxAttempts: 3})
	kinds := []string{"explicit"}
	for name := range payloads {
		kinds = append(kinds, "kind-"+strings.ReplaceAll(name, " ", "-"))
	}
	jobs := claim(t, b.Source, "w1", 10, kinds...)
	if len(jobs) != len(payloads)+1 {
		t.Fatalf("claimed %d jobs, want %d", len(jobs), len(payloads)+1)
	}
	for _, j := range jobs {
		if j.Attempt != 1 || j.LastError != "" || j.Lease == "" {
			t.Errorf("job %s: attempt %d, last error %q, lease %q; want a first attempt with a lease", j.ID, j.Attempt, j.LastError, j.Lease)
		}
		SameInstant(t, "created_at", j.CreatedAt, clock.Now())
		SameInstant(t, "lease expiry", j.LeaseExpires, clock.Now().Add(testLease))
		if j.ID == explicit {
			if j.MaxAttempts != 3 || j.Kind != "explicit" {
				t.Errorf("explicit job: kind %q, max attempts %d; want explicit, 3", j.Kind, j.MaxAttempts)
			}
			continue
		}
		name, ok := ids[j.ID]
		if !ok {
			t.Fatalf("claimed unknown job %s", j.ID)
		}
		if !bytes.Equal(j.Payload, payloads[name]) {
			t.Errorf("payload %q came back as %d different bytes", name, len(j.Payload))
		}
		if j.MaxAttempts != ports.DefaultJobMaxAttempts {
			t.Errorf("max attempts %d, want the default %d", j.MaxAttempts, ports.DefaultJobMaxAttempts)
		}
	}
}

func testJobInvalid(t *testing.T, b JobsBackend, _ *jobClock) {
	for name, job := range map[string]ports.NewJob{
		"empty kind":            {Kind: ""},
		"long kind":             {Kind: strings.Repeat("k", ports.MaxJobKindBytes+1)},
		"kind not UTF-8":        {Kind: "\xff"},
		"payload over 64 KiB":   {Kind: "k", Payload: make([]byte, ports.MaxJobPayloadBytes+1)},
		"negative max attempts": {Kind: "k", MaxAttempts: -1},
		"too many attempts":     {Kind: "k", MaxAttempts: ports.MaxJobAttempts + 1},
	} {
		_, err := b.Queue.Enqueue(t.Context(), b.UoW.Pool(), job)
		WantErr(t, name, err, ports.ErrInvalidJob)
	}
	if s := statsOf(t, b.Source); len(s) != 0 {
		t.Fatalf("Stats after refused jobs = %+v, want nothing", s)
	}
	// The longest kind is accepted.
	enqueue(t, b, ports.NewJob{Kind: strings.Repeat("k", ports.MaxJobKindBytes)})
}

func testJobClaimSelection(t *testing.T, b JobsBackend, clock *jobClock) {
	now := clock.Now()
	later := enqueue(t, b, ports.NewJob{Kind: "a", RunAt: now.Add(time.Minute)})
	first := enqueue(t, b, ports.NewJob{Kind: "a", RunAt: now.Add(-2 * time.Second)})
	second := enqueue(t, b, ports.NewJob{Kind: "a", RunAt: now.Add(-time.Second)})
	third := enqueue(t, b, ports.NewJob{Kind: "a"})
	other := enqueue(t, b, ports.NewJob{Kind: "b", RunAt: now.Add(-time.Hour)})

	claimNone(t, b.Source, "w1", "c")
	if jobs := claim(t, b.Source, "w1", 10); len(jobs) != 0 {
		t.Fatalf("a claim without kinds took %v", jobIDs(jobs))
	}
	firstTwo := claim(t, b.Source, "w1", 2, "a")
	if got := jobIDs(firstTwo); !slices.Equal(got, []string{first, second}) {
		t.Fatalf("first claim of 2 = %v, want the two oldest due %v", got, []string{first, second})
	}
	last := claim(t, b.Source, "w1", 2, "a")
	if got := jobIDs(last); !slices.Equal(got, []string{third}) {
		t.Fatalf("second claim = %v, want the last due job %s (not the one due later)", got, third)
	}
	for _, j := range append(firstTwo, last...) {
		NoErr(t, "Complete", b.Source.Complete(t.Context(), j))
	}
	clock.Advance(time.Minute)
	if got := jobIDs(claim(t, b.Source, "w1", 5, "a", "b")); !slices.Equal(got, []string{other, later}) {
		t.Fatalf("claim of two kinds = %v, want %v (oldest due first)", got, []string{other, later})
	}
	info := lookup(t, b, later)
	if info.Status != ports.JobRunning || info.Attempts != 1 || info.Worker != "w1" {
		t.Fatalf("a claimed job = %+v, want running, attempt 1, worker w1", info)
	}
	SameInstant(t, "due_at of a running job (its lease expiry)", info.DueAt, clock.Now().Add(testLease))
}

func testJobLeaseExpiry(t *testing.T, b JobsBackend, clock *jobClock) {
	ctx := t.Context()
	id := enqueue(t, b, ports.NewJob{Kind: "k"})
	other := b.Instance(t)
	dead := claimOne(t, b.Source, "dead", "k")
	claimNone(t, other, "alive", "k")
	clock.Advance(testLease - time.Second)
	claimNone(t, other, "alive", "k")

	clock.Advance(time.Second)
	alive := claimOne(t, other, "alive", "k")
	if alive.ID != id || alive.Attempt != 2 || alive.Lease == dead.Lease {
		t.Fatalf("reclaimed job %s attempt %d lease %q, want %s attempt 2 with a new lease", alive.ID, alive.Attempt, alive.Lease, id)
	}
	if info := lookup(t, b, id); info.Worker != "alive" || info.Status != ports.JobRunning {
		t.Fatalf("after the reclaim, Lookup = %+v", info)
	}

	// The worker presumed dead can no longer touch the job.
	_, err := b.Source.Extend(ctx, dead, testLease)
	WantErr(t, "Extend with the old lease", err, ports.ErrJobLeaseLost)
	WantErr(t, "Complete with the old lease", b.Source.Complete(ctx, dead), ports.ErrJobLeaseLost)
	WantErr(t, "Retry with the old lease", b.Source.Retry(ctx, dead, clock.Now(), "late"), ports.ErrJobLeaseLost)
	WantErr(t, "Fail with the old lease", b.Source.Fail(ctx, dead, "late"), ports.ErrJobLeaseLost)
	WantErr(t, "Release with the old lease", b.Source.Release(ctx, dead), ports.ErrJobLeaseLost)
	if info := lookup(t, b, id); info.Status != ports.JobRunning || info.Attempts != 2 || info.LastError != "" {
		t.Fatalf("the old lease changed the job: %+v", info)
	}

	NoErr(t, "Complete with the current lease", other.Complete(ctx, alive))
	assertGone(t, b, id)
	WantErr(t, "Complete twice", other.Complete(ctx, alive), ports.ErrJobLeaseLost)
	clock.Advance(2 * testLease)
	claimNone(t, b.Source, "w", "k")
}

func testJobExtend(t *testing.T, b JobsBackend, clock *jobClock) {
	ctx := t.Context()
	enqueue(t, b, ports.NewJob{Kind: "k"})
	other := b.Instance(t)
	job := claimOne(t, b.Source, "w1", "k")
	clock.Advance(20 * time.Second)
	until, err := b.Source.Extend(ctx, job, testLease)
	NoErr(t, "Extend", err)
	SameInstant(t, "extended expiry", until, clock.Now().Add(testLease))
	clock.Advance(20 * time.Second) // 40 s after the claim, 20 s after the extension
	claimNone(t, other, "w2", "k")
	// Extending twice within the same instant is not mistaken for a lost lease.
	_, err = b.Source.Extend(ctx, job, testLease)
	NoErr(t, "Extend", err)
	_, err = b.Source.Extend(ctx, job, testLease)
	NoErr(t, "Extend again at the same instant", err)
	clock.Advance(testLease)
	if got := claimOne(t, other, "w2", "k"); got.Attempt != 2 {
		t.Fatalf("claim after the extended lease expired: attempt %d, want 2", got.Attempt)
	}
}

func testJobRetry(t *testing.T, b JobsBackend, clock *jobClock) {
	ctx := t.Context()
	id := enqueue(t, b, ports.NewJob{Kind: "k", MaxAttempts: 3})
	job := claimOne(t, b.Source, "w1", "k")
	NoErr(t, "Retry", b.Source.Retry(ctx, job, clock.Now().Add(time.Minute), "boom: the first attempt"))
	info := lookup(t, b, id)
	if info.Status != ports.JobQueued || info.Attempts != 1 || info.LastError != "boom: the first attempt" {
		t.Fatalf("after Retry, Lookup = %+v", info)
	}
	SameInstant(t, "due_at after Retry", info.DueAt, clock.Now().Add(time.Minute))
	WantErr(t, "Complete after Retry", b.Source.Complete(ctx, job), ports.ErrJobLeaseLost)

	clock.Advance(time.Minute - time.Second)
	claimNone(t, b.Source, "w1", "k")
	clock.Advance(time.Second)
	again := claimOne(t, b.Source, "w1", "k")
	if again.ID != id || again.Attempt != 2 || again.LastError != "boom: the first attempt" {
		t.Fatalf("second claim: %s attempt %d last error %q", again.ID, again.Attempt, again.LastError)
	}
	NoErr(t, "Complete", b.Source.Complete(ctx, again))
	assertGone(t, b, id)
}

func testJobLastAttempt(t *testing.T, b JobsBackend, clock *jobClock) {
	ctx := t.Context()
	// Failed explicitly on its last attempt.
	failed := enqueue(t, b, ports.NewJob{Kind: "k", MaxAttempts: 2})
	job := claimOne(t, b.Source, "w1", "k")
	NoErr(t, "Retry", b.Source.Retry(ctx, job, time.Time{}, "first"))
	job = claimOne(t, b.Source, "w1", "k")
	if job.Attempt != 2 || job.MaxAttempts != 2 {
		t.Fatalf("attempt %d of %d, want 2 of 2", job.Attempt, job.MaxAttempts)
	}
	NoErr(t, "Fail", b.Source.Fail(ctx, job, "second and last"))
	info := lookup(t, b, failed)
	if info.Status != ports.JobFailed || info.LastError != "second and last" || info.Attempts != 2 || !info.DueAt.IsZero() {
		t.Fatalf("after Fail, Lookup = %+v", info)
	}
	clock.Advance(24 * time.Hour)
	claimNone(t, b.Source, "w1", "k")
	WantErr(t, "Complete of a failed job", b.Source.Complete(ctx, job), ports.ErrJobLeaseLost)

	// Retried on its last attempt: the next claim that finds it due hands it out Spent, to be
	// given up, with the attempt's reason and its attempts unchanged.
	retried := enqueue(t, b, ports.NewJob{Kind: "r", MaxAttempts: 1})
	job = claimOne(t, b.Source, "w1", "r")
	if job.Spent {
		t.Fatalf("a job's first and only attempt is handed out Spent: %+v", job)
	}
	NoErr(t, "Retry on the last attempt", b.Source.Retry(ctx, job, time.Time{}, "out of attempts"))
	spent := claimOne(t, b.Source, "w2", "r")
	if !spent.Spent || spent.Attempt != 1 || spent.LastError != "out of attempts" {
		t.Fatalf("a job retried on its last attempt, claimed again: %+v, want it Spent at attempt 1 with the reason", spent)
	}
	if info := lookup(t, b, retried); info.Status != ports.JobRunning || info.Attempts != 1 || info.Worker != "w2" {
		t.Fatalf("a spent job being given up: %+v, want running, held by w2, attempts unchanged", info)
	}
	claimNone(t, b.Source, "w3", "r") // held while it is given up
	NoErr(t, "Fail of the spent job", b.Source.Fail(ctx, spent, spent.LastError))
	claimNone(t, b.Source, "w1", "r")
	info = lookup(t, b, retried)
	if info.Status != ports.JobFailed || info.LastError != "out of attempts" || info.Attempts != 1 {
		t.Fatalf("a job retried on its last attempt, given up: %+v", info)
	}
	if s := statsOf(t, b.Source); s["k"].Failed != 1 || s["r"].Failed != 1 || s["k"].Queued+s["r"].Queued != 0 {
		t.Fatalf("Stats = %+v, want one failed job of each kind", s)
	}
}

func testJobDiesOnLastAttempt(t *testing.T, b JobsBackend, clock *jobClock) {
	id := enqueue(t, b, ports.NewJob{Kind: "k", MaxAttempts: 2})
	claimOne(t, b.Source, "w1", "k")
	clock.Advance(testLease) // the first worker died
	job := claimOne(t, b.Instance(t), "w2", "k")
	if job.Attempt != 2 {
		t.Fatalf("attempt %d, want 2", job.Attempt)
	}
	clock.Advance(testLease) // so did the second, on the last attempt
	spent := claimOne(t, b.Instance(t), "w3", "k")
	if !spent.Spent || spent.Attempt != 2 || !strings.Contains(spent.LastError, "lease") {
		t.Fatalf("a job whose last attempt's worker died, claimed again: %+v, want it Spent at attempt 2 with a reason naming the lease", spent)
	}
	WantErr(t, "Complete by the dead worker", b.Source.Complete(t.Context(), job), ports.ErrJobLeaseLost)
	// The one giving it up dies too: it is handed out Spent again, never run.
	clock.Advance(testLease)
	spent = claimOne(t, b.Instance(t), "w4", "k")
	if !spent.Spent || spent.Attempt != 2 {
		t.Fatalf("a spent job whose giver-up died, claimed again: %+v, want it Spent at attempt 2", spent)
	}
	NoErr(t, "Fail of the spent job", b.Source.Fail(t.Context(), spent, spent.LastError))
	info := lookup(t, b, id)
	if info.Status != ports.JobFailed || !strings.Contains(info.LastError, "lease") || info.Attempts != 2 {
		t.Fatalf("a job whose last attempt's worker died, given up: %+v, want failed with a reason naming the lease", info)
	}
	claimNone(t, b.Instance(t), "w5", "k")
}

func testJobRelease(t *testing.T, b JobsBackend, _ *jobClock) {
	ctx := t.Context()
	id := enqueue(t, b, ports.NewJob{Kind: "k", MaxAttempts: 1})
	job := claimOne(t, b.Source, "stopping", "k")
	NoErr(t, "Release", b.Source.Release(ctx, job))
	WantErr(t, "Complete after Release", b.Source.Complete(ctx, job), ports.ErrJobLeaseLost)
	if info := lookup(t, b, id); info.Status != ports.JobQueued || info.Attempts != 0 {
		t.Fatalf("after Release, Lookup = %+v, want queued with no attempt counted", info)
	}
	// Claimable at once, by another instance, still on its first (and only) attempt.
	again := claimOne(t, b.Instance(t), "other", "k")
	if again.Attempt != 1 {
		t.Fatalf("after Release, attempt %d, want 1", again.Attempt)
	}
	NoErr(t, "Complete", b.Source.Complete(ctx, again))
}

func testJobReasonCleaned(t *testing.T, b JobsBackend, _ *jobClock) {
	ctx := t.Context()
	id := enqueue(t, b, ports.NewJob{Kind: "k"})
	job := claimOne(t, b.Source, "w1", "k")
	reason := "bad bytes \xff\xfe then " + strings.Repeat("é", ports.MaxJobReasonBytes)
	NoErr(t, "Retry with a long, invalid reason", b.Source.Retry(ctx, job, time.Time{}, reason))
	want := ports.CleanJobReason(reason)
	if len(want) > ports.MaxJobReasonBytes || strings.Contains(want, "\xff") {
		t.Fatalf("CleanJobReason left %d bytes or invalid UTF-8", len(want))
	}
	if got := lookup(t, b, id).LastError; got != want {
		t.Fatalf("stored reason has %d bytes, want the cleaned %d bytes", len(got), len(want))
	}
	if got := claimOne(t, b.Source, "w1", "k").LastError; got != want {
		t.Fatalf("claimed job's last error has %d bytes, want %d", len(got), len(want))
	}
}

func testJobStats(t *testing.T, b JobsBackend, clock *jobClock) {
	ctx := t.Context()
	start := clock.Now()
	enqueue(t, b, ports.NewJob{Kind: "a"})
	enqueue(t, b, ports.NewJob{Kind: "a"})
	enqueue(t, b, ports.NewJob{Kind: "a", RunAt: start.Add(time.Hour)})
	enqueue(t, b, ports.NewJob{Kind: "b", MaxAttempts: 1})
	enqueue(t, b, ports.NewJob{Kind: "b", MaxAttempts: 1})
	clock.Advance(90 * time.Second)
	bJobs := claim(t, b.Source, "w1", 2, "b")
	if len(bJobs) != 2 {
		t.Fatalf("claimed %d jobs of b, want 2", len(bJobs))
	}
	NoErr(t, "Fail", b.Source.Fail(ctx, bJobs[1], "no"))
	claim(t, b.Source, "w1", 1, "a")

	s := statsOf(t, b.Source)
	if len(s) != 2 {
		t.Fatalf("Stats = %+v, want kinds a and b", s)
	}
	a, bs := s["a"], s["b"]
	if a.Queued != 2 || a.Running != 1 || a.Failed != 0 {
		t.Errorf("kind a: %+v, want 2 queued (one not due yet), 1 running", a)
	}
	// The oldest due job of a has waited since it was enqueued; the one due in an hour does
	// not count.
	if a.OldestQueuedAge < 90*time.Second-time.Millisecond || a.OldestQueuedAge > 90*time.Second+time.Millisecond {
		t.Errorf("kind a: oldest queued age %s, want 1m30s", a.OldestQueuedAge)
	}
	if bs.Queued != 0 || bs.Running != 1 || bs.Failed != 1 || bs.OldestQueuedAge != 0 {
		t.Errorf("kind b: %+v, want 1 running and 1 failed, nothing waiting", bs)
	}
}

func testJobPurge(t *testing.T, b JobsBackend, clock *jobClock) {
	ctx := t.Context()
	old := enqueue(t, b, ports.NewJob{Kind: "k"})
	NoErr(t, "Fail", b.Source.Fail(ctx, claimOne(t, b.Source, "w1", "k"), "old failure"))
	clock.Advance(time.Hour)
	cutoff := clock.Now()
	clock.Advance(time.Second)
	recent := enqueue(t, b, ports.NewJob{Kind: "k"})
	NoErr(t, "Fail", b.Source.Fail(ctx, claimOne(t, b.Source, "w1", "k"), "recent failure"))
	queued := enqueue(t, b, ports.NewJob{Kind: "q", RunAt: cutoff.Add(-time.Hour)})
	running := enqueue(t, b, ports.NewJob{Kind: "r"})
	claimOne(t, b.Source, "w1", "r")

	n, err := b.Source.PurgeFailed(ctx, cutoff)
	NoErr(t, "PurgeFailed", err)
	if n != 1 {
		t.Fatalf("PurgeFailed removed %d jobs, want 1", n)
	}
	assertGone(t, b, old)
	for _, id := range []string{recent, queued, running} {
		lookup(t, b, id)
	}
	n, err = b.Source.PurgeFailed(ctx, cutoff)
	NoErr(t, "PurgeFailed again", err)
	if n != 0 {
		t.Fatalf("a second PurgeFailed removed %d jobs", n)
	}
}

func testJobConcurrentClaims(t *testing.T, b JobsBackend, _ *jobClock) {
	const (
		instances = 6
		jobs      = 60
	)
	want := map[string]bool{}
	for range jobs {
		want[enqueue(t, b, ports.NewJob{Kind: "k"})] = true
	}
	sources := make([]ports.JobSource, instances)
	for i := range sources {
		sources[i] = b.Instance(t)
	}
	claimed := make([][]string, instances)
	errs := make([]error, instances)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, src := range sources {
		wg.Go(func() {
			<-start
			// A claim that finds nothing means that every job left is taken or being taken
			// by a claim in flight, which will take it.
			for {
				got, err := src.Claim(t.Context(), ports.JobClaim{Worker: fmt.Sprintf("instance-%d", i), Kinds: []string{"k"}, Limit: 2, Lease: time.Hour})
				if err != nil {
					errs[i] = err
					return
				}
				if len(got) == 0 {
					return
				}
				claimed[i] = append(claimed[i], jobIDs(got)...)
			}
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent claims: %v", err)
	}
	seen := map[string]int{}
	for i, ids := range claimed {
		for _, id := range ids {
			if other, dup := seen[id]; dup {
				t.Errorf("job %s was claimed by instance %d and instance %d", id, other, i)
			}
			seen[id] = i
		}
	}
	if len(seen) != jobs {
		t.Errorf("%d distinct jobs claimed, want all %d", len(seen), jobs)
	}
	for id := range seen {
		if !want[id] {
			t.Errorf("claimed unknown job %s", id)
		}
	}
	claimNone(t, b.Source, "late", "k")
}
