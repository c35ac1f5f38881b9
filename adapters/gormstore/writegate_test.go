package gormstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/test/testdb"
)

// TestSQLiteUnitsOfWorkTakeTurns: units of work that together hold SQLite's write lock far
// longer than busy_timeout (5 s) all commit, each as soon as the one before it ends. Left to
// SQLite's busy handler, the last of the four polled for the lock past busy_timeout and
// failed with SQLITE_BUSY (503) although the lock came free three times while it slept.
func TestSQLiteUnitsOfWorkTakeTurns(t *testing.T) {
	t.Parallel()
	db := testdb.SQLite(t)
	uow := gormstore.NewUnitOfWork(db)
	const writers, hold = 4, 1800 * time.Millisecond // the last waits 3 × hold = 5.4 s
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			errs[i] = uow.Do(t.Context(), func(ctx context.Context, tx ports.Scope) error {
				gdb, err := gormstore.DB(tx)
				if err != nil {
					return err
				}
				if err := gdb.WithContext(ctx).Exec("UPDATE users SET stamps = stamps WHERE id = ''").Error; err != nil {
					return err
				}
				time.Sleep(hold)
				return nil
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("unit of work %d: %v", i, err)
		}
	}
}

// TestSQLiteWriteTurnWaitEndsWithItsContext: a unit of work waiting for its turn gives up when
// its context's deadline passes, as unavailable (503, retry), and a nested unit of work (a
// savepoint inside the holder's transaction) does not wait for the turn its own transaction
// holds.
func TestSQLiteWriteTurnWaitEndsWithItsContext(t *testing.T) {
	t.Parallel()
	db := testdb.SQLite(t)
	uow := gormstore.NewUnitOfWork(db)
	holding, release := make(chan struct{}), make(chan struct{})
	holder := make(chan error, 1)
	go func() {
		holder <- uow.Do(t.Context(), func(ctx context.Context, tx ports.Scope) error {
			gdb, err := gormstore.DB(tx)
			if err != nil {
				return err
			}
			nested := gormstore.NewUnitOfWork(gdb).Do(ctx, func(context.Context, ports.Scope) error { return nil })
			close(holding)
			<-release
			return nested
		})
	}()
	select {
	case <-holding:
	case err := <-holder:
		t.Fatalf("the holder ended first: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("a nested unit of work waited for the turn its own transaction holds")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := uow.Do(ctx, func(context.Context, ports.Scope) error { return nil })
	if !errors.Is(err, domain.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting past its deadline: %v, want unavailable and the deadline", err)
	}
	if waited := time.Since(start); waited > 3*time.Second {
		t.Fatalf("gave up after %v, long after its 100 ms deadline", waited)
	}
	close(release)
	if err := <-holder; err != nil {
		t.Fatal(err)
	}
}
