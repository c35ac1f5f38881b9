package ecg_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/ecg/ecg"
	ecgport "github.com/acme/postsvc/ports/ecg"
)

// stallingSpool holds its upload inside the store's transaction: reading its blocks waits
// until release is closed, after closing entered.
type stallingSpool struct {
	ecgport.Spool
	entered, release chan struct{}
}

func (s *stallingSpool) Each(fn func(ecg.Block) error) error {
	close(s.entered)
	<-s.release
	return s.Spool.Each(fn)
}

// TestUploadsOfOneOwnerTakeTurnsAndShedWhenTheirTimeRunsOut: while one upload of an owner is
// being stored, another of the same owner waits for its turn in the process, not in the
// database; when its time to be stored runs out first it is shed (503 overloaded: the
// account's own uploads are queued ahead), not reported as the database unreachable (503
// unavailable, which an outside probe's 25 concurrent 52 MiB uploads of one account got).
// Once the first is stored, the next one is.
func TestUploadsOfOneOwnerTakeTurnsAndShedWhenTheirTimeRunsOut(t *testing.T) {
	f := newFixture(t)
	owner := f.user()
	stall := &stallingSpool{entered: make(chan struct{}), release: make(chan struct{})}
	first := make(chan error, 1)
	go func() {
		_, _, err := f.uploadWith(t, context.Background(), owner, "first", func(s ecgport.Spool) ecgport.Spool {
			stall.Spool = s
			return stall
		}, signal(100, 1))
		first <- err
	}()
	<-stall.entered

	second := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, _, err := f.uploadWith(t, ctx, owner, "second", nil, signal(100, 2))
		second <- err
	}()
	ended := false
	select {
	case err := <-second:
		ended = true
		if !errors.Is(err, domain.ErrOverloaded) || domain.KindOf(err) != domain.KindOverloaded || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("an upload whose time ran out behind the owner's other upload: %v, want overloaded", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("an upload waited for the owner's other upload past its own deadline")
	}
	close(stall.release)
	if err := <-first; err != nil {
		t.Fatalf("the first upload: %v", err)
	}
	if !ended {
		if err := <-second; err == nil {
			t.Error("an upload that outwaited its deadline was stored")
		}
	}
	if _, created, err := f.upload(t, owner, "second", signal(100, 2)); err != nil || !created {
		t.Fatalf("the second upload again, with the turn free: created %v, %v", created, err)
	}
	if n := f.count(t, owner); n != 2 {
		t.Fatalf("%d ECGs stored, want 2", n)
	}
}
