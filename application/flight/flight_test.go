package flight_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/postsvc/application/flight"
)

// TestOneRunForConcurrentCallers: callers of one key that arrive while a run is under way
// share it; the first runs it on its own goroutine.
func TestOneRunForConcurrentCallers(t *testing.T) {
	var g flight.Group[string, int]
	var runs atomic.Int64
	started := make(chan struct{})
	release := make(chan struct{})
	fn := func(context.Context) (int, error) {
		if runs.Add(1) == 1 {
			close(started)
		}
		<-release
		return 42, nil
	}
	type answer struct {
		v      int
		shared bool
		err    error
	}
	answers := make(chan answer, 10)
	var callers sync.WaitGroup
	callers.Go(func() {
		v, shared, err := g.Do(context.Background(), "k", fn)
		answers <- answer{v, shared, err}
	})
	<-started
	for range 9 {
		callers.Go(func() {
			v, shared, err := g.Do(context.Background(), "k", fn)
			answers <- answer{v, shared, err}
		})
	}
	time.Sleep(50 * time.Millisecond) // let the nine reach the run
	close(release)
	callers.Wait()
	close(answers)
	sharedCount := 0
	for a := range answers {
		if a.err != nil || a.v != 42 {
			t.Fatalf("Do = %d, %v; want 42", a.v, a.err)
		}
		if a.shared {
			sharedCount++
		}
	}
	if runs.Load() != 1 || sharedCount != 9 {
		t.Fatalf("%d runs, %d shared answers; want 1 run shared by 9", runs.Load(), sharedCount)
	}
	// The run has ended: the next caller starts a new one.
	if _, shared, _ := g.Do(context.Background(), "k", func(context.Context) (int, error) { return 1, nil }); shared {
		t.Fatal("a call after the run ended joined it")
	}
}

func TestRunsOnTheFirstCallersGoroutine(t *testing.T) {
	var g flight.Group[string, int]
	before := runtime.NumGoroutine()
	_, _, _ = g.Do(context.Background(), "k", func(context.Context) (int, error) {
		if during := runtime.NumGoroutine(); during != before {
			t.Errorf("%d goroutines during the run, %d before", during, before)
		}
		return 0, nil
	})
}

// TestFirstCallerLeavingDoesNotFailTheOthers: the run does not see the first caller's
// cancellation, and everyone gets its result.
func TestFirstCallerLeavingDoesNotFailTheOthers(t *testing.T) {
	var g flight.Group[string, string]
	started := make(chan struct{})
	release := make(chan struct{})
	fn := func(ctx context.Context) (string, error) {
		close(started)
		<-release
		return "page", ctx.Err()
	}
	firstCtx, cancelFirst := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, _, err := g.Do(firstCtx, "k", fn)
		first <- err
	}()
	<-started
	other := make(chan error, 1)
	go func() {
		v, _, err := g.Do(context.Background(), "k", fn)
		if err == nil && v != "page" {
			err = fmt.Errorf("got %q", v)
		}
		other <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancelFirst()
	close(release)
	if err := <-other; err != nil {
		t.Fatalf("the caller that joined: %v", err)
	}
	if err := <-first; err != nil {
		t.Fatalf("the first caller: %v", err)
	}
}

// TestJoinedCallerStopsWaitingWithItsContext: a caller that joined leaves when its own
// context ends, with an error that says so and wraps the context's.
func TestJoinedCallerStopsWaitingWithItsContext(t *testing.T) {
	var g flight.Group[string, int]
	started := make(chan struct{})
	release := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _, _ = g.Do(context.Background(), "k", func(context.Context) (int, error) {
			close(started)
			<-release
			return 1, nil
		})
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, shared, err := g.Do(ctx, "k", func(context.Context) (int, error) { return 2, nil })
	if !errors.Is(err, flight.ErrStoppedWaiting) || !errors.Is(err, context.DeadlineExceeded) || !shared {
		t.Fatalf("Do = shared %v, %v; want ErrStoppedWaiting wrapping the deadline", shared, err)
	}
	close(release)
	<-done
}

// TestJoinedCallerTriesAgainAfterTheFirstCallersDeadline: a run that failed with the first
// caller's deadline is tried once more by a caller that still has time.
func TestJoinedCallerTriesAgainAfterTheFirstCallersDeadline(t *testing.T) {
	var g flight.Group[string, int]
	var runs atomic.Int64
	started := make(chan struct{})
	fn := func(ctx context.Context) (int, error) {
		if runs.Add(1) == 1 {
			close(started)
			<-ctx.Done()
			return 0, fmt.Errorf("query: %w", ctx.Err())
		}
		return 7, nil
	}
	firstCtx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	first := make(chan error, 1)
	go func() {
		_, _, err := g.Do(firstCtx, "k", fn)
		first <- err
	}()
	<-started
	v, _, err := g.Do(context.Background(), "k", fn)
	if err != nil || v != 7 {
		t.Fatalf("Do = %d, %v; want 7 from a second run", v, err)
	}
	if err := <-first; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first caller: %v, want its deadline", err)
	}
	if runs.Load() != 2 {
		t.Fatalf("%d runs, want 2", runs.Load())
	}
}

// TestOtherErrorsAreNotTriedAgain: only a context error is worth another run.
func TestOtherErrorsAreNotTriedAgain(t *testing.T) {
	var g flight.Group[string, int]
	var runs atomic.Int64
	started := make(chan struct{})
	release := make(chan struct{})
	boom := errors.New("database down")
	fn := func(context.Context) (int, error) {
		if runs.Add(1) == 1 {
			close(started)
			<-release
		}
		return 0, boom
	}
	go func() { _, _, _ = g.Do(context.Background(), "k", fn) }()
	<-started
	go func() { time.Sleep(30 * time.Millisecond); close(release) }()
	if _, shared, err := g.Do(context.Background(), "k", fn); !errors.Is(err, boom) || !shared {
		t.Fatalf("Do = shared %v, %v; want the shared run's error", shared, err)
	}
	if runs.Load() != 1 {
		t.Fatalf("%d runs, want 1", runs.Load())
	}
}

func TestRunKeepsTheFirstCallersDeadline(t *testing.T) {
	var g flight.Group[string, time.Time]
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	want, _ := ctx.Deadline()
	got, _, _ := g.Do(ctx, "a", func(ctx context.Context) (time.Time, error) {
		d, _ := ctx.Deadline()
		return d, nil
	})
	if !got.Equal(want) {
		t.Fatalf("run's deadline %v, want the caller's %v", got, want)
	}
	got, _, _ = g.Do(context.Background(), "b", func(ctx context.Context) (time.Time, error) {
		d, _ := ctx.Deadline()
		return d, nil
	})
	if got.IsZero() || time.Until(got) > time.Minute {
		t.Fatalf("run without a caller deadline has deadline %v, want one within a minute", got)
	}
}

// TestPanicGoesUpTheFirstCallerAndFailsTheOthers: the first caller sees the panic itself,
// the callers that joined get an error naming it, and the key is free again.
func TestPanicGoesUpTheFirstCallerAndFailsTheOthers(t *testing.T) {
	var g flight.Group[string, int]
	started := make(chan struct{})
	release := make(chan struct{})
	recovered := make(chan any, 1)
	go func() {
		defer func() { recovered <- recover() }()
		_, _, _ = g.Do(context.Background(), "k", func(context.Context) (int, error) {
			close(started)
			<-release
			panic("bug in the work")
		})
	}()
	<-started
	go func() { time.Sleep(30 * time.Millisecond); close(release) }()
	_, _, err := g.Do(context.Background(), "k", func(context.Context) (int, error) { return 1, nil })
	if err == nil || !strings.Contains(err.Error(), "bug in the work") {
		t.Fatalf("the caller that joined got %v, want an error naming the panic", err)
	}
	if r := <-recovered; r != "bug in the work" {
		t.Fatalf("the first caller recovered %v, want the panic's own value", r)
	}
	if v, shared, err := g.Do(context.Background(), "k", func(context.Context) (int, error) { return 3, nil }); err != nil || shared || v != 3 {
		t.Fatalf("after the panic: %d, shared %v, %v; want a fresh run", v, shared, err)
	}
}
