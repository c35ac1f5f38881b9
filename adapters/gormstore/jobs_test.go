package gormstore_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/adapters/system"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/test/testdb"
)

// claimWithin claims up to limit jobs of kind "k" and fails the test unless the claim answers
// within a second: a claim must never wait for rows that another transaction holds.
func claimWithin(t *testing.T, q *gormstore.JobQueue, limit int) []ports.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	start := time.Now()
	jobs, err := q.Claim(ctx, ports.JobClaim{Worker: "w", Kinds: []string{"k"}, Limit: limit, Lease: time.Minute})
	if err != nil {
		t.Fatalf("Claim: %v (after %s)", err, time.Since(start))
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Claim took %s: it waited for rows another transaction holds", d)
	}
	return jobs
}

func enqueueDue(t *testing.T, q *gormstore.JobQueue, scope ports.Scope, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		// Distinct due times, oldest first, so the claim order is the order of ids.
		id, err := q.Enqueue(t.Context(), scope, ports.NewJob{Kind: "k", RunAt: time.Now().Add(time.Duration(i-n) * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// TestJobClaimsShareTheWorkOnMySQL holds the oldest due jobs exactly as a claim in flight on
// another instance does (its select, in a transaction left open), and checks that a claim
// meanwhile takes the other due jobs at once. It fails if the select waited for locked rows
// (no SKIP LOCKED: claimers would run one after another) or locked more rows than it returns (a
// sort before LIMIT: one claimer would hold every due job and the others would find none).
func TestJobClaimsShareTheWorkOnMySQL(t *testing.T) {
	db := testdb.MySQL(t)
	q := gormstore.NewJobQueue(db, system.NewClock(), system.NewIDs())
	ids := enqueueDue(t, q, gormstore.NewUnitOfWork(db).Pool(), 10)

	held := holdClaim(t, db, q, 2)

	got := claimWithin(t, q, 10)
	if want := ids[2:]; !slices.Equal(jobIDs(got), want) {
		t.Fatalf("claim beside a held claim = %v, want the 8 jobs not held %v", jobIDs(got), want)
	}
	if err := held.Rollback().Error; err != nil {
		t.Fatal(err)
	}
	if got := claimWithin(t, q, 10); !slices.Equal(jobIDs(got), ids[:2]) {
		t.Fatalf("claim after the held claim ended = %v, want %v", jobIDs(got), ids[:2])
	}
}

// holdClaim runs q's claim select for up to limit jobs of kind "k" in a transaction of its own,
// as q's claims run, and leaves the transaction open, holding what the select locked.
func holdClaim(t *testing.T, db *gorm.DB, q *gormstore.JobQueue, limit int) *gorm.DB {
	t.Helper()
	held := db.WithContext(t.Context()).Begin(q.ClaimTx())
	if held.Error != nil {
		t.Fatal(held.Error)
	}
	t.Cleanup(func() { held.Rollback() })
	var rows []map[string]any
	if err := held.Raw(q.ClaimQuery(), time.Now().UTC(), []string{"k"}, limit).Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	return held
}

// TestJobEnqueueDoesNotWaitForClaimsOnMySQL holds a claim in flight that scanned every due job
// and checks that an enqueue, which runs inside request transactions, does not wait for it. Under
// MySQL's default REPEATABLE READ the claim's range scan would also lock the gap where a job due
// now is inserted; claims run at READ COMMITTED, which takes no gap locks.
func TestJobEnqueueDoesNotWaitForClaimsOnMySQL(t *testing.T) {
	db := testdb.MySQL(t)
	q := gormstore.NewJobQueue(db, system.NewClock(), system.NewIDs())
	enqueueDue(t, q, gormstore.NewUnitOfWork(db).Pool(), 3)
	holdClaim(t, db, q, 100)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := q.Enqueue(ctx, gormstore.NewUnitOfWork(db).Pool(), ports.NewJob{Kind: "k"}); err != nil {
		t.Fatalf("Enqueue beside a claim in flight: %v (after %s)", err, time.Since(start))
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Enqueue took %s: it waited for a claim in flight", d)
	}
}

// TestJobClaimSkipsUncommittedJobsOnMySQL enqueues a job in a unit of work that stays open, as a
// slow request would, and checks that claims neither wait for it nor see it until it commits.
func TestJobClaimSkipsUncommittedJobsOnMySQL(t *testing.T) {
	db := testdb.MySQL(t)
	q := gormstore.NewJobQueue(db, system.NewClock(), system.NewIDs())
	committed := enqueueDue(t, q, gormstore.NewUnitOfWork(db).Pool(), 1)

	enqueued, finish := make(chan string), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- gormstore.NewUnitOfWork(db).Do(t.Context(), func(ctx context.Context, tx ports.Scope) error {
			id, err := q.Enqueue(ctx, tx, ports.NewJob{Kind: "k", RunAt: time.Now().Add(-time.Hour)})
			if err != nil {
				return err
			}
			enqueued <- id
			<-finish
			return nil
		})
	}()
	var pending string
	select {
	case pending = <-enqueued:
	case err := <-done:
		t.Fatalf("the unit of work ended early: %v", err)
	}
	got := claimWithin(t, q, 10)
	close(finish)
	if !slices.Equal(jobIDs(got), committed) {
		t.Fatalf("claim beside an open unit of work = %v, want only the committed job %v", jobIDs(got), committed)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := claimWithin(t, q, 10); !slices.Equal(jobIDs(got), []string{pending}) {
		t.Fatalf("claim after the commit = %v, want %s", jobIDs(got), pending)
	}
}

// TestJobQueueRefusesForeignScopes checks that a job cannot be enqueued in a scope that is not
// this store's: it would silently escape the caller's transaction.
func TestJobQueueRefusesForeignScopes(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, db *gorm.DB) {
		q := gormstore.NewJobQueue(db, system.NewClock(), system.NewIDs())
		if _, err := q.Enqueue(t.Context(), foreignScope{}, ports.NewJob{Kind: "k"}); err == nil {
			t.Fatal("Enqueue accepted a scope of another store")
		}
	})
}

// TestReleaseLeasesMakesRunningJobsDueNow: jobs claimed with a long lease (by a process that
// then died) are claimed again at once after ReleaseLeases, as their next attempt; jobs not
// yet due stay where they are.
func TestReleaseLeasesMakesRunningJobsDueNow(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, db *gorm.DB) {
		q := gormstore.NewJobQueue(db, system.NewClock(), system.NewIDs())
		pool := gormstore.NewUnitOfWork(db).Pool()
		ids := enqueueDue(t, q, pool, 2)
		later, err := q.Enqueue(t.Context(), pool, ports.NewJob{Kind: "k", RunAt: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if got := claimWithin(t, q, 10); len(got) != 2 {
			t.Fatalf("claimed %d jobs, want the 2 due", len(got))
		}
		if got := claimWithin(t, q, 10); len(got) != 0 {
			t.Fatalf("claimed %v while their leases (a minute) hold", jobIDs(got))
		}
		n, err := q.ReleaseLeases(t.Context())
		if err != nil || n != 2 {
			t.Fatalf("ReleaseLeases = %d, %v; want the 2 running jobs", n, err)
		}
		again := claimWithin(t, q, 10)
		slices.Sort(ids)
		got := jobIDs(again)
		slices.Sort(got)
		if !slices.Equal(got, ids) || slices.Contains(got, later) {
			t.Fatalf("after ReleaseLeases claimed %v, want %v", got, ids)
		}
		for _, j := range again {
			if j.Attempt != 2 {
				t.Fatalf("job %s claimed again as attempt %d, want 2", j.ID, j.Attempt)
			}
		}
	})
}

type foreignScope struct{}

func (foreignScope) StorageScope() {}

func jobIDs(jobs []ports.Job) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}
