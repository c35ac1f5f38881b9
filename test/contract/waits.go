package contract

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/acme/postsvc/ports"
)

// SecondWaits is the contract of a lock held to the end of a unit of work: hold runs in one
// unit of work and takes the lock, returning what to do before it commits; while it holds
// the lock, second, in another unit of work, must not return (for 300 ms); once the first
// commits, second must return without error. what names the lock for the messages.
func SecondWaits(t *testing.T, uow ports.UnitOfWork, what string,
	hold func(ctx context.Context, tx ports.Scope) (commit func() error, err error),
	second func(ctx context.Context, tx ports.Scope) error,
) {
	t.Helper()
	ctx := t.Context()
	locked, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	holder := make(chan error, 1)
	go func() {
		holder <- uow.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
			commit, err := hold(ctx, tx)
			close(locked)
			if err != nil {
				return err
			}
			<-release
			return commit()
		})
	}()
	<-locked
	waiting := make(chan error, 1)
	go func() { waiting <- uow.Do(ctx, second) }()
	select {
	case err := <-waiting:
		t.Fatalf("the second unit of work returned while another held the %s (err %v)", what, err)
	case err := <-holder:
		t.Fatalf("the holder of the %s ended early: %v", what, err)
	case <-time.After(300 * time.Millisecond):
	}
	releaseOnce.Do(func() { close(release) })
	NoErr(t, "the holder of the "+what, <-holder)
	NoErr(t, "the unit of work that waited for the "+what, <-waiting)
}
