package stampboard

import (
	"context"
	"sync"
	"sync/atomic"
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
//
// With fresh set, a read does not wait at all when the last round trip that completed started
// at most fresh before it, and the writers wait instead (see Wait): that is the board's mode.
// Round trips then go on while reads keep coming, so that under load reads find one fresh.
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

	// fresh, when not 0, lets a read return at once when the last round trip that completed
	// started at most fresh before the read began (see Wait). Whoever makes a change that a
	// read must see then waits fresh (plus a margin) after Redis ran it before answering.
	fresh time.Duration
	// lastStart is when the last round trip that completed without error started, and
	// lastRead when the last read began, both in nanoseconds since monoBase; lastStart is 0
	// when there is none. running says a round trip is in flight or due (inflight, read
	// without the lock).
	lastStart atomic.Int64
	lastRead  atomic.Int64
	running   atomic.Bool
	// freshReads counts the reads let through by a fresh round trip, waitedReads those that
	// waited for a round trip of their own (with fresh set).
	freshReads  atomic.Int64
	waitedReads atomic.Int64
}

// monoBase is the origin of the barrier's times: a reading of the monotonic clock, so that
// the times are immune to changes of the wall clock.
var monoBase = time.Now()

func sinceBase(t time.Time) int64 { return max(int64(t.Sub(monoBase)), 1) }

// barrierFresh is the barrier's fresh (see barrier): how long a completed round trip lets reads
// through without one of their own. A change a read must see is answered only
// barrierFresh + freshMargin after Redis ran it (Redis.Publish), so this is what every such
// write waits for reads to stop waiting: under load, round trips follow one another every gap
// or round trip time, well within it, and a read waits for one only when the last one is older
// (an idle board, a slow link).
const barrierFresh = 4 * time.Millisecond

// freshMargin covers what separates the writer's measure of barrierFresh from the reader's:
// the writer counts from when Redis's answer reached it, after Redis ran the change, and the
// two monotonic clocks run at rates that differ by parts per million.
const freshMargin = time.Millisecond

// barrierGap is the barrier's gap (see barrier): at most 5,000 round trips a second, each
// read delayed by at most 0.2 ms beyond one round trip.
const barrierGap = 200 * time.Microsecond

type round struct {
	done chan struct{}
	err  error
}

// Wait returns once a round trip started after the call has completed, or with its error, or
// with the error of ctx or of limit, whichever ends first.
//
// With fresh set, it returns at once when a round trip that started at most fresh before the
// call has completed: a change made before that round trip started had its invalidation
// applied before the round trip's answer, and a change made after it is answered only fresh
// (plus a margin) after Redis ran it, so no read that begins after that answer is served
// here. While reads keep coming, round trips follow one another (every gap, or every round
// trip time) so that the reads find one fresh and do not wait.
func (b *barrier) Wait(ctx, limit context.Context) error {
	if b.fresh > 0 {
		now := sinceBase(time.Now())
		b.lastRead.Store(now)
		if s := b.lastStart.Load(); s > 0 && now-s <= int64(b.fresh) {
			if !b.running.Load() {
				b.start(nil)
			}
			b.freshReads.Add(1)
			return nil
		}
		b.waitedReads.Add(1)
	}
	b.mu.Lock()
	if b.next == nil {
		b.next = &round{done: make(chan struct{})}
	}
	r := b.next
	b.startLocked(r)
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

// start starts round trips when none is in flight or due: r's, or one that no read waits for
// when r is nil.
func (b *barrier) start(r *round) {
	b.mu.Lock()
	if r == nil && !b.inflight {
		r = &round{done: make(chan struct{})}
	}
	b.startLocked(r)
	b.mu.Unlock()
}

// startLocked starts r's round trip when none is in flight or due (b.mu held); otherwise r is
// b.next, which the round trips in flight take next.
func (b *barrier) startLocked(r *round) {
	if b.inflight {
		return
	}
	b.inflight = true
	b.running.Store(true)
	if b.next == r {
		b.next = nil
	}
	go b.run(r)
}

// run sends r's round trip, then the rounds that gathered meanwhile, one at a time and no
// sooner than gap after the one before. Until a round is taken it keeps gathering reads.
// With fresh set, it goes on while reads keep coming, whether or not they wait.
func (b *barrier) run(r *round) {
	for {
		started := b.clock()
		ctx, cancel := b.timeout()
		r.err = b.send(ctx)
		cancel()
		ok := r.err == nil
		if b.fresh > 0 {
			if ok {
				b.lastStart.Store(sinceBase(started))
			} else {
				b.lastStart.Store(0)
			}
		}
		close(r.done)
		if wait := b.gap - time.Since(started); wait > 0 {
			time.Sleep(wait)
		}
		b.mu.Lock()
		r = b.next
		b.next = nil
		if r == nil && ok && b.fresh > 0 && b.lastRead.Load() >= sinceBase(started) {
			r = &round{done: make(chan struct{})} // reads came meanwhile: keep them fresh
		}
		if r == nil {
			b.inflight = false
			b.running.Store(false)
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
	}
}
