package ecg_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	ecgapp "github.com/acme/postsvc/application/ecg"
	"github.com/acme/postsvc/domain/ecg/ecg"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
	ecgport "github.com/acme/postsvc/ports/ecg"
	"github.com/acme/postsvc/test/fakes"
	"github.com/acme/postsvc/test/fakes/ecgfake"
)

// deadlockOnce is a unit of work whose first transaction is chosen as a deadlock victim after
// fn ran (rolled back whole), and which then runs fn again, as gormstore's does on MySQL.
type deadlockOnce struct {
	*fakes.Store
	once sync.Once
}

func (u *deadlockOnce) Do(ctx context.Context, fn func(ctx context.Context, tx ports.Scope) error) error {
	u.once.Do(func() {
		_ = u.Store.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
			if err := fn(ctx, tx); err != nil {
				return err
			}
			return errors.New("Error 1213 (40001): Deadlock found when trying to get lock")
		})
	})
	return u.Store.Do(ctx, fn)
}

// callLog records the repository calls of upload transactions, in order.
type callLog struct {
	ecgport.Repository
	mu    *sync.Mutex
	calls *[]string
}

func (r callLog) log(name string) {
	r.mu.Lock()
	*r.calls = append(*r.calls, name)
	r.mu.Unlock()
}

func (r callLog) LockOwner(ctx context.Context, owner identity.UserID) (int64, error) {
	r.log("LockOwner")
	return r.Repository.LockOwner(ctx, owner)
}

func (r callLog) Add(ctx context.Context, e *ecg.ECG, blocks ecg.Blocks) error {
	r.log("Add")
	return r.Repository.Add(ctx, e, blocks)
}

// TestUploadRetriedAfterADeadlockTakesTheOwnersLock: an upload whose unit of work lost a
// deadlock runs again behind the owner's row lock, so that the uploads of one id that deadlock
// each other when a delete of that id commits go one at a time instead of losing again, and
// again (three lost attempts were answered 503). Every attempt takes the lock first: the quota
// is checked under it (the first call is Receive's read of the owner's bytes, on the pool).
func TestUploadRetriedAfterADeadlockTakesTheOwnersLock(t *testing.T) {
	f := newFixture(t)
	var (
		mu    sync.Mutex
		calls []string
	)
	store := storeWith{Store: ecgfake.Store{}, wrap: func(r ecgport.Repository) ecgport.Repository {
		return callLog{Repository: r, mu: &mu, calls: &calls}
	}}
	f.svc = ecgapp.NewService(&deadlockOnce{Store: f.env.Store}, store, f.spools, f.env.Jobs, ecgapp.Analyses{sumAnalysis{}}, f.env.Clock, f.env.IDs, f.settings)
	alice := f.user()
	stored, created, err := f.upload(t, alice, "rec-1", []int32{1, 2, 3})
	if err != nil || !created {
		t.Fatalf("upload retried after a deadlock: created %v, %v", created, err)
	}
	if want := []string{"LockOwner", "LockOwner", "Add", "LockOwner", "Add"}; !slices.Equal(calls, want) {
		t.Fatalf("calls %v, want %v: each attempt must take the owner's lock first", calls, want)
	}
	if got, err := f.svc.Get(context.Background(), alice, "rec-1"); err != nil || got.Key() != stored.Key() {
		t.Fatalf("stored ECG: %v", err)
	}
}
