package gormstore_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/test/testdb"
)

// TestDeadlockVictimIsRetried makes two transactions lock two users in opposite orders, which
// InnoDB resolves by rolling one back with ER_LOCK_DEADLOCK. The unit of work must run the
// victim again, so both succeed and each bump lands exactly once.
func TestDeadlockVictimIsRetried(t *testing.T) {
	db := testdb.MySQL(t)
	store := newStores(db)
	uow := store.uow
	a := addTestUser(t, store, "a@deadlock.io", identity.RoleUser)
	b := addTestUser(t, store, "b@deadlock.io", identity.RoleUser)

	var firstLocks sync.WaitGroup
	firstLocks.Add(2)
	var attempts atomic.Int32
	run := func(first, second identity.UserID) error {
		var once sync.Once
		return uow.Do(context.Background(), func(ctx context.Context, scope ports.Scope) error {
			attempts.Add(1)
			if err := store.bump(ctx, scope, first); err != nil {
				return err
			}
			// Only the first attempt waits, so both hold one lock before asking for the other.
			once.Do(func() { firstLocks.Done(); firstLocks.Wait() })
			return store.bump(ctx, scope, second)
		})
	}
	errs := make(chan error, 2)
	go func() { errs <- run(a.ID(), b.ID()) }()
	go func() { errs <- run(b.ID(), a.ID()) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("a transaction failed instead of being retried: %v", err)
		}
	}
	if attempts.Load() < 3 {
		t.Fatalf("%d attempts: the deadlock did not happen, so the test proved nothing", attempts.Load())
	}
	for _, id := range []identity.UserID{a.ID(), b.ID()} {
		v, err := store.stamp(context.Background(), id)
		if err != nil || v != 2 {
			t.Fatalf("user %s: posts version %d, %v; want 2", id, v, err)
		}
	}
}
