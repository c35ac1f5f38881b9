package stampboard

import (
	"context"
	"sync"
)

// barrier makes a read wait for one round trip on the connection that receives Redis's
// invalidations, started after the read began. Redis queues the invalidation of a key on every
// tracking connection while it executes the write, before it answers the writer; replies and
// pushes on one connection arrive in order. So once a round trip that started after a revoking
// call was answered has come back, its invalidation has been processed, and the local cache
// cannot serve the old value. Concurrent reads share round trips: a read joins the next one
// to be sent, and at most one is in flight, so under load the cost is one PING per round trip
// time, not one per request.
type barrier struct {
	mu       sync.Mutex
	next     *round // collecting reads, not sent yet
	inflight bool
	send     func(ctx context.Context) error
	timeout  func() (context.Context, context.CancelFunc)
}

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

// run sends r's round trip, then the rounds that gathered meanwhile, one at a time.
func (b *barrier) run(r *round) {
	for r != nil {
		ctx, cancel := b.timeout()
		r.err = b.send(ctx)
		cancel()
		close(r.done)
		b.mu.Lock()
		r = b.next
		b.next = nil
		if r == nil {
			b.inflight = false
		}
		b.mu.Unlock()
	}
}
