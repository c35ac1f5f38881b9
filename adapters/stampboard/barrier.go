package stampboard

import (
	"context"
	"sync"
	"time"
)

// barrier makes a read wait for one round trip on the connection that receives Redis's
// invalidations, started after the read began. Redis queues the invalidation of a key on every
// tracking connection while it executes the write, before it answers the writer; replies and
// pushes on one connection arrive in order. So once a round trip that started after a revoking
// call was answered has come back, its invalidation has been processed, and the local cache
// cannot serve the old value. Concurrent reads share round trips: a read joins the next one
// to be sent, at most one is in flight, and a round trip starts at least gap after the one
// before it, so under load the cost is one round trip per gap (or per round trip time, if
// longer), not one per request. A read that finds none in flight or due is sent at once.
type barrier struct {
	mu       sync.Mutex
	next     *round // collecting reads, not sent yet
	inflight bool
	send     func(ctx context.Context) error
	timeout  func() (context.Context, context.CancelFunc)
	// gap is the least time between the starts of two round trips: on a loaded machine the
	// round trip is short next to the time reads spend waiting for a core, and each one costs
	// Redis a script run and both sides two system calls, so this bounds that cost without
	// delaying a read by more than gap.
	gap time.Duration
	// now, when set, replaces time.Now for the start of each round trip (tests read the
	// barrier's own start times through it, free of the scheduling delay before send).
	now func() time.Time
}

// barrierGap is the barrier's gap (see barrier): at most 5,000 round trips a second, each
// read delayed by at most 0.2 ms beyond one round trip.
const barrierGap = 200 * time.Microsecond

type round struct {
	done chan struct{}
	err  error
}

// Wait returns once a round trip started after the call has completed, or with its error, or
// with the error of ctx or of limit, whichever ends first.
func (b *barrier) Wait(ctx, limit context.Context) error {
	b.mu.Lock()
	if b.next == nil {
		b.next = &round{done: make(chan struct{})}
	}
	r := b.next
	if !b.inflight {
		b.inflight = true
		b.next = nil
		go b.run(r)
	}
	b.mu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	case <-limit.Done():
		return limit.Err()
	}
}

func (b *barrier) clock() time.Time {
	if b.now != nil {
		return b.now()
	}
	return time.Now()
}

// run sends r's round trip, then the rounds that gathered meanwhile, one at a time and no
// sooner than gap after the one before. Until a round is taken it keeps gathering reads.
func (b *barrier) run(r *round) {
	for {
		started := b.clock()
		ctx, cancel := b.timeout()
		r.err = b.send(ctx)
		cancel()
		close(r.done)
		if wait := b.gap - time.Since(started); wait > 0 {
			time.Sleep(wait)
		}
		b.mu.Lock()
		r = b.next
		b.next = nil
		if r == nil {
			b.inflight = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
	}
}
