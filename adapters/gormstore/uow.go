package gormstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"
	"gorm.io/gorm"

	"github.com/acme/postsvc/ports"
)

// UnitOfWork runs a function in one database transaction; see ports.UnitOfWork.
type UnitOfWork struct{ db *gorm.DB }

var _ ports.UnitOfWork = (*UnitOfWork)(nil)

// NewUnitOfWork binds a unit of work to the pool that Open returned.
func NewUnitOfWork(db *gorm.DB) *UnitOfWork { return &UnitOfWork{db: db} }

// Pool is the scope of the pool itself: each repository call on it commits by itself.
func (u *UnitOfWork) Pool() ports.Scope { return scope{db: u.db, pool: true} }

// Do begins a transaction, passes fn repositories bound to it, and commits when fn returns
// nil. GORM's Transaction rolls back when fn returns an error or panics (and re-panics), and
// returns the commit's own error, so a failed commit is never reported as success.
//
// fn's error is returned exactly as fn returned it: the repositories inside have already
// classified their errors, and a business error such as user.ErrEmailTaken must reach the
// caller unchanged. Only failures of BEGIN and COMMIT themselves go through mapErr here.
//
// A transaction that InnoDB chose as a deadlock victim was rolled back whole and is safe to run
// again, so Do retries it, at most maxAttempts times in all, each time after a random pause
// (deadlockPause); every other failure is returned at once. fn must therefore not have effects
// outside the transaction, which the port's contract already asks.
func (u *UnitOfWork) Do(ctx context.Context, fn func(ctx context.Context, tx ports.Scope) error) error {
	var err error
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		if attempt > 1 && !pause(ctx, attempt) {
			return err
		}
		err = u.once(ctx, fn)
		if !isDeadlock(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// maxAttempts bounds deadlock retries: contention that survives five attempts is reported
// (as 503 with Retry-After) rather than retried without end.
const maxAttempts = 5

// deadlockPause bounds the pause before a deadlock victim's second attempt; each later one may
// wait twice as long as the one before (at most about 120 ms in all). Run again at once, a
// victim went back into the contention that had just chosen it: inserts of one unique key
// that waited on a row being deleted (signups with the email of an account being deleted,
// uploads of an ECG id being deleted) all hold a shared lock on the deleted key when the
// delete commits, and each waits for the others to insert, so InnoDB kills them one after
// another, and those that came straight back took the shared lock again and were killed
// again. Retried at once, three attempts (and five) lost in every run of twenty such rounds
// (signups racing the deletion, 503); after a pause the survivor has inserted and a victim
// meets its row, a plain duplicate: three attempts then still lost about one run in ten,
// five none in twenty.
const deadlockPause = 8 * time.Millisecond

// pause waits a random time between half of and the whole of deadlockPause, doubled for each
// attempt after the second, so that victims of one deadlock do not come back together; false
// when ctx ended first.
func pause(ctx context.Context, attempt int) bool {
	d := deadlockPause << (attempt - 2)
	t := time.NewTimer(d/2 + rand.N(d/2))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (u *UnitOfWork) once(ctx context.Context, fn func(ctx context.Context, tx ports.Scope) error) error {
	var (
		fnErr     error
		committed []func()
	)
	release, err := enterWriteGate(ctx, u.db)
	if err != nil {
		return err
	}
	err = func() error {
		defer release() // a panic in fn too: GORM rolls back and re-panics
		return u.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			fnErr = fn(ctx, scope{db: tx, committed: &committed})
			return fnErr
		})
	}()
	if fnErr != nil {
		return interrupted(ctx, fnErr)
	}
	if err == nil {
		for _, f := range committed {
			f()
		}
	}
	return interrupted(ctx, MapErr(err))
}

// interrupted reports a transaction that its context ended as the context's error. When the
// context of a transaction ends, database/sql rolls it back on its own, from another
// goroutine, and then fails whatever comes next (a statement, or the COMMIT that races the
// deadline) with sql.ErrTxDone, "transaction has already been committed or rolled back". That
// is a timeout or a cancellation, not a programming error: it must be answered like any other
// (503), never as a 500. Nothing was committed: the rollback won, so the writes are gone.
func interrupted(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil || !errors.Is(err, sql.ErrTxDone) {
		return err
	}
	return fmt.Errorf("gormstore: transaction ended with its request: %w", context.Cause(ctx))
}

// isDeadlock reports whether err carries MySQL's ER_LOCK_DEADLOCK (1213).
func isDeadlock(err error) bool {
	var me *mysqldriver.MySQLError
	return errors.As(err, &me) && me.Number == 1213
}
