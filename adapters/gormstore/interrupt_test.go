package gormstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/posts/post"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/test/testdb"
)

// TestTransactionEndedByItsContext ends a unit of work's context after its writes and before
// its commit, and waits until database/sql has rolled the transaction back on its own. The
// commit then finds the transaction done: Do must report the context's error (answered 503
// like any timeout), never sql.ErrTxDone (which became a 500), and nothing may be stored.
func TestTransactionEndedByItsContext(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, db *gorm.DB) {
		store := newStores(db)
		uow := store.uow
		for _, c := range []struct {
			name   string
			cancel bool // cancel inside the transaction, or let a 50 ms deadline pass
			want   error
		}{
			{"canceled", true, context.Canceled},
			{"deadline", false, context.DeadlineExceeded},
		} {
			t.Run(c.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
				defer cancel()
				u := newUser(t, c.name+"@interrupted.io")
				err := uow.Do(ctx, func(ctx context.Context, scope ports.Scope) error {
					tx := store.in(scope)
					if err := tx.Users().Add(ctx, u); err != nil {
						return err
					}
					if c.cancel {
						cancel()
					}
					// Let database/sql's watcher see the context end and roll back.
					<-ctx.Done()
					time.Sleep(100 * time.Millisecond)
					return nil
				})
				if !errors.Is(err, c.want) || errors.Is(err, sql.ErrTxDone) {
					t.Fatalf("Do = %v, want %v and not sql.ErrTxDone", err, c.want)
				}
				if _, err := store.Users().ByID(t.Context(), u.ID()); !errors.Is(err, user.ErrNotFound) {
					t.Fatalf("the interrupted transaction's user: %v, want not found", err)
				}
			})
		}
	})
}

// TestCommitRacingItsDeadline adds large posts concurrently, each with a deadline drawn around
// the time its transaction takes, so that deadlines land before, during and after the
// commit. Every outcome must be one of two: committed and reported as success, or absent and
// reported as a timeout. Nothing else (a 500-worthy error, a success with nothing stored, a
// timeout with the post stored) may happen.
func TestCommitRacingItsDeadline(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, db *gorm.DB) {
		store := newStores(db)
		uow := store.uow
		author := newUser(t, "racer@interrupted.io")
		if err := store.Users().Add(t.Context(), author); err != nil {
			t.Fatal(err)
		}
		text := strings.Repeat("\\'\"\x00", post.MaxTextBytes/4) // escapes to 2 MiB on MySQL
		const n = 40
		add := func(ctx context.Context, i int) (*post.Post, error) {
			p, err := post.New(post.ID(fmt.Sprintf("0190b6d6-8f3c-7a41-9c1e-%012d", i)), author.ID(), text, time.Now())
			if err != nil {
				return nil, err
			}
			return p, uow.Do(ctx, func(ctx context.Context, scope ports.Scope) error {
				tx := store.in(scope)
				if err := store.bump(ctx, scope, author.ID()); err != nil {
					return err
				}
				return tx.Posts().Add(ctx, p, 1<<30)
			})
		}
		// Calibrate: the slowest of n concurrent adds without a deadline sets the range the
		// deadlines are drawn from, so they fall all over the transactions' lifetimes.
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			slowest time.Duration
		)
		for i := range n {
			wg.Go(func() {
				start := time.Now()
				if _, err := add(t.Context(), n+i); err != nil {
					t.Error(err)
				}
				mu.Lock()
				slowest = max(slowest, time.Since(start))
				mu.Unlock()
			})
		}
		wg.Wait()
		var committed, timeout int
		for i := range n {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(i), 7))
				ctx, cancel := context.WithTimeout(t.Context(), time.Duration(r.Int64N(int64(slowest))))
				defer cancel()
				p, err := add(ctx, i)
				if p == nil {
					t.Error(err)
					return
				}
				_, readErr := store.Posts().ByID(t.Context(), author.ID(), p.ID())
				stored := readErr == nil
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil && stored:
					committed++
				case err != nil && !stored && isTimeout(err):
					timeout++
				default:
					t.Errorf("post %d: Do = %v, stored = %v (read: %v)", i, err, stored, readErr)
				}
			})
		}
		wg.Wait()
		t.Logf("deadlines up to %s: %d committed, %d timed out", slowest, committed, timeout)
	})
}

// isTimeout reports whether err is answered like a timeout: 503 with Retry-After.
func isTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, domain.ErrUnavailable)
}

func newUser(t *testing.T, email string) *user.User {
	t.Helper()
	u, err := user.New(newUserID(t), mustEmail(t, email), "hash", "", identity.RoleUser, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return u
}
