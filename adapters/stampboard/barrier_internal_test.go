package stampboard

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newTestBarrier(gap time.Duration, send func(context.Context) error) *barrier {
	return &barrier{
		send: send, gap: gap,
		timeout: func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), time.Minute)
		},
	}
}

// TestBarrierWaitsForARoundTripStartedAfterIt: however reads and round trips interleave, a
// read returns only after a round trip that started after the read began has completed.
func TestBarrierWaitsForARoundTripStartedAfterIt(t *testing.T) {
	var started, completed atomic.Int64
	b := newTestBarrier(50*time.Microsecond, func(context.Context) error {
		n := started.Add(1)
		time.Sleep(time.Duration(n%3) * 100 * time.Microsecond)
		completed.Store(n)
		return nil
	})
	ctx := t.Context()
	deadline := time.Now().Add(300 * time.Millisecond)
	var wg sync.WaitGroup
	var reads atomic.Int64
	for range 16 {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				before := started.Load()
				if err := b.Wait(ctx, ctx); err != nil {
					t.Error(err)
					return
				}
				if got := completed.Load(); got <= before {
					t.Errorf("a read that began after round trip %d returned when only %d had completed", before, got)
					return
				}
				reads.Add(1)
			}
		})
	}
	wg.Wait()
	if reads.Load() <= started.Load() {
		t.Errorf("%d reads took %d round trips: concurrent reads should share them", reads.Load(), started.Load())
	}
}

// TestBarrierSpacesItsRoundTrips: under a constant stream of reads, round trips start at
// least gap apart; a read that comes when none is due is sent at once.
func TestBarrierSpacesItsRoundTrips(t *testing.T) {
	const gap = 50 * time.Millisecond
	var (
		mu     sync.Mutex
		starts []time.Time // as the barrier took them, when it decided to start a round trip
		sends  int
	)
	b := newTestBarrier(gap, func(context.Context) error {
		mu.Lock()
		sends++
		mu.Unlock()
		return nil
	})
	// The barrier's own clock readings: a time taken inside send would add however long the
	// round trip's goroutine waited for a core before calling it (19.4 ms apart on a loaded
	// CI machine for a 20 ms gap), which says nothing about the barrier.
	b.now = func() time.Time {
		now := time.Now()
		mu.Lock()
		starts = append(starts, now)
		mu.Unlock()
		return now
	}
	ctx := t.Context()

	// Alone, a read does not wait for the gap (a loaded machine may still delay it by a few
	// milliseconds; waiting for the gap would take all of it).
	if took := timeWait(t, b); took > gap*3/4 {
		t.Errorf("a lone read took %v, want no wait for the gap of %v", took, gap)
	}
	time.Sleep(2 * gap)
	if took := timeWait(t, b); took > gap*3/4 {
		t.Errorf("a read long after the last round trip took %v, want no wait for the gap", took)
	}
	time.Sleep(2 * gap)

	mu.Lock()
	starts, sends = nil, 0
	mu.Unlock()
	deadline := time.Now().Add(12 * gap)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if err := b.Wait(ctx, ctx); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if sends != len(starts) {
		t.Fatalf("%d round trips sent, %d started", sends, len(starts))
	}
	if len(starts) < 5 {
		t.Fatalf("%d round trips in %v of reads", len(starts), 12*gap)
	}
	for i := 1; i < len(starts); i++ {
		if d := starts[i].Sub(starts[i-1]); d < gap {
			t.Errorf("round trips %d and %d started %v apart, want at least %v", i-1, i, d, gap)
		}
	}
}

func timeWait(t *testing.T, b *barrier) time.Duration {
	t.Helper()
	start := time.Now()
	if err := b.Wait(t.Context(), t.Context()); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

// TestBarrierLetsReadsThroughOnlyWhileARoundTripIsFresh: with fresh set, reads that begin
// within fresh of the start of the last round trip that completed return at once, even while
// the next round trip hangs; a read that begins later waits for a round trip that started
// after it.
func TestBarrierLetsReadsThroughOnlyWhileARoundTripIsFresh(t *testing.T) {
	const fresh = time.Second
	release := make(chan struct{})
	var sends atomic.Int64
	b := newTestBarrier(0, func(ctx context.Context) error {
		if sends.Add(1) > 1 {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	b.fresh = fresh
	defer close(release)
	ctx := t.Context()
	first := time.Now()
	if err := b.Wait(ctx, ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		err := b.Wait(short, short)
		cancel()
		if err != nil {
			t.Fatalf("read %d, %v after the first round trip started (within %v), waited: %v", i, time.Since(first), fresh, err)
		}
	}
	if got := b.freshReads.Load(); got != 100 {
		t.Fatalf("%d reads let through, want 100", got)
	}
	for wait := time.Now().Add(time.Second); sends.Load() < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(wait) {
			t.Fatal("the reads let through did not start the next round trip")
		}
	}
	time.Sleep(time.Until(first.Add(fresh + 50*time.Millisecond)))
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := b.Wait(short, short); err == nil {
		t.Fatal("a read that began after the fresh window returned while every round trip since hung")
	}
}

// TestBarrierFreshReadsFollowARecentRoundTrip: however reads and round trips interleave
// (reads come in bursts and after pauses longer than fresh), a read returns only once a round
// trip that started at most fresh before the read began has completed; some reads are let
// through and some wait.
func TestBarrierFreshReadsFollowARecentRoundTrip(t *testing.T) {
	const fresh = 2 * time.Millisecond
	var (
		mu        sync.Mutex
		starts    []time.Time // the barrier's start of each round trip, in order
		completed int
	)
	b := newTestBarrier(100*time.Microsecond, func(context.Context) error {
		time.Sleep(time.Duration(rand.IntN(3)) * 300 * time.Microsecond)
		mu.Lock()
		completed++
		mu.Unlock()
		return nil
	})
	b.fresh = fresh
	b.now = func() time.Time {
		now := time.Now()
		mu.Lock()
		starts = append(starts, now)
		mu.Unlock()
		return now
	}
	ctx := t.Context()
	deadline := time.Now().Add(400 * time.Millisecond)
	var wg sync.WaitGroup
	var reads atomic.Int64
	for range 8 {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if rand.IntN(4) == 0 {
					time.Sleep(time.Duration(rand.IntN(4)) * fresh)
				}
				begin := time.Now()
				if err := b.Wait(ctx, ctx); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				var latest time.Time
				if completed > 0 {
					latest = starts[completed-1]
				}
				mu.Unlock()
				if latest.Before(begin.Add(-fresh)) {
					t.Errorf("a read that began at %v returned when the last completed round trip had started at %v, more than %v before",
						begin.Format(time.StampMicro), latest.Format(time.StampMicro), fresh)
					return
				}
				reads.Add(1)
			}
		})
	}
	wg.Wait()
	let := b.freshReads.Load()
	if let == 0 || let == reads.Load() {
		t.Fatalf("%d of %d reads let through: want some let through and some waiting", let, reads.Load())
	}
	mu.Lock() // round trips the last reads started may still run
	defer mu.Unlock()
	t.Logf("%d of %d reads let through, %d round trips", let, reads.Load(), len(starts))
}
