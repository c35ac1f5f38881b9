package argon2id

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/ports"
)

// gate hands out the hasher's slots fairly between clients, and sheds work that could not
// start soon instead of letting it queue towards the request timeout.
//
// A first-come-first-served semaphore lets one client that sends many requests at once fill
// the queue, so everybody else waits behind all of its work (a flood of signups from one
// address made another client's login wait 5 seconds and fail). The gate instead:
//
//   - gives a free slot to whoever asks while no one is waiting, so a single client (or all
//     clients behind one proxy) can still use every slot when nobody else needs them;
//   - when a slot frees and clients are waiting, gives it to the waiting client that holds the
//     fewest slots, the longest-unserved one among equals (round robin across clients, first
//     come first served within a client), so a newcomer waits at most until the first running
//     hash ends rather than behind the flooder's queue: a flooder holds no more than its fair
//     share of the slots whenever someone else wants one;
//   - lets each client keep at most maxPerClient checks waiting, and all clients together at
//     most maxQueued, and refuses beyond that at once with an error wrapping
//     domain.ErrOverloaded. When the whole queue is full, a client with fewer waiting checks
//     takes the place of the newest check of the client with the most waiting, so a few
//     flooding addresses together still cannot shut everyone else out.
//
// Counting slots rather than reserving some for others keeps the gate work-conserving: no
// slot is idle while any client waits.
type gate struct {
	slots        int
	maxQueued    int
	maxPerClient int
	shed         atomic.Int64

	mu      sync.Mutex
	running int
	queued  int
	// clients holds every client that has a slot or a waiting check, and no other, so its
	// size is bounded by slots plus maxQueued.
	clients map[ports.ClientKey]*client
	// ready lists the clients that have waiting checks, in the order in which they are
	// offered a free slot; a client served goes to the back.
	ready []*client
}

// client is one client's share of the gate.
type client struct {
	key     ports.ClientKey
	running int
	waiters []*waiter // first come, first served
}

// waiter is one check waiting for a slot.
type waiter struct {
	c *client
	// decided receives nil when the waiter is given a slot, or the error that sheds it. It is
	// written once, under the gate's lock, and buffered so the writer never blocks.
	decided chan error
}

func newGate(slots, maxQueued, maxPerClient int) *gate {
	return &gate{
		slots: slots, maxQueued: maxQueued, maxPerClient: maxPerClient,
		clients: make(map[ports.ClientKey]*client),
	}
}

// acquire returns with a slot held for key, to be given back with release, or with an error:
// one wrapping domain.ErrOverloaded, at once, when the check could not start soon; the
// context's when it was cancelled first; and when its deadline passed in the queue, both
// (the check did not start in time, which is load, not an unreachable dependency).
func (g *gate) acquire(ctx context.Context, key ports.ClientKey) (*client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	g.mu.Lock()
	c := g.clients[key]
	if c == nil {
		c = &client{key: key}
		g.clients[key] = c
	}
	// Waiters exist only while every slot is taken (release hands a freed slot straight to
	// one), so a free slot means nobody is waiting and the caller may have it.
	if g.running < g.slots {
		c.running++
		g.running++
		g.mu.Unlock()
		return c, nil
	}
	if len(c.waiters) >= g.maxPerClient {
		g.forgetIfIdle(c)
		g.mu.Unlock()
		return nil, g.refusal("this client already has %d password checks waiting", g.maxPerClient)
	}
	if g.queued >= g.maxQueued && !g.pushOutFor(c) {
		g.forgetIfIdle(c)
		g.mu.Unlock()
		return nil, g.refusal("%d password checks are already waiting", g.maxQueued)
	}
	w := &waiter{c: c, decided: make(chan error, 1)}
	c.waiters = append(c.waiters, w)
	g.queued++
	if len(c.waiters) == 1 {
		g.ready = append(g.ready, c)
	}
	g.mu.Unlock()

	select {
	case err := <-w.decided:
		if err != nil {
			return nil, err
		}
		return c, nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case err := <-w.decided:
		// The slot (or the refusal) came as the context ended. Nobody will use the slot, so
		// it goes to the next waiter at once.
		if err != nil {
			return nil, err
		}
		g.releaseLocked(c)
	default:
		g.removeWaiter(w)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil, g.refusal("no slot before the request's deadline: %w", ctx.Err())
	}
	return nil, ctx.Err()
}

// release gives back a slot that acquire returned for c.
func (g *gate) release(c *client) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.releaseLocked(c)
}

func (g *gate) releaseLocked(c *client) {
	c.running--
	g.running--
	g.forgetIfIdle(c)
	for g.running < g.slots && len(g.ready) > 0 {
		g.grantNext()
	}
}

// grantNext gives a slot to the first waiter of the ready client holding the fewest slots;
// among equals the one earliest in the ready order, which then goes to the back.
func (g *gate) grantNext() {
	best := 0
	for i, c := range g.ready {
		if c.running < g.ready[best].running {
			best = i
		}
	}
	c := g.ready[best]
	g.ready = slices.Delete(g.ready, best, best+1)
	w := c.waiters[0]
	c.waiters[0] = nil
	c.waiters = c.waiters[1:]
	g.queued--
	if len(c.waiters) > 0 {
		g.ready = append(g.ready, c)
	}
	c.running++
	g.running++
	w.decided <- nil
}

// pushOutFor makes room in a full queue for a check of c by shedding the newest waiting check
// of the client with the most waiting (the one holding more slots among equals), when that
// client has at least two more waiting than c. It reports whether it made room.
func (g *gate) pushOutFor(c *client) bool {
	var victim *client
	for _, r := range g.ready {
		if victim == nil || len(r.waiters) > len(victim.waiters) ||
			len(r.waiters) == len(victim.waiters) && r.running > victim.running {
			victim = r
		}
	}
	if victim == nil || len(victim.waiters) < len(c.waiters)+2 {
		return false
	}
	last := len(victim.waiters) - 1
	w := victim.waiters[last]
	victim.waiters[last] = nil
	victim.waiters = victim.waiters[:last]
	g.queued--
	// The victim had at least two waiting checks, so it stays in the ready list.
	w.decided <- g.refusal("its place in the queue went to a client with fewer checks waiting")
	return true
}

// removeWaiter takes a waiter whose context ended out of the queue.
func (g *gate) removeWaiter(w *waiter) {
	c := w.c
	if i := slices.Index(c.waiters, w); i >= 0 {
		c.waiters = slices.Delete(c.waiters, i, i+1)
		g.queued--
	}
	if len(c.waiters) == 0 {
		if i := slices.Index(g.ready, c); i >= 0 {
			g.ready = slices.Delete(g.ready, i, i+1)
		}
	}
	g.forgetIfIdle(c)
}

// forgetIfIdle drops a client that holds no slot and has nothing waiting, so the map holds
// only active clients however many addresses come and go.
func (g *gate) forgetIfIdle(c *client) {
	if c.running == 0 && len(c.waiters) == 0 {
		delete(g.clients, c.key)
	}
}

// refusal counts a shed check and builds its error.
func (g *gate) refusal(format string, args ...any) error {
	g.shed.Add(1)
	return fmt.Errorf("%w: password check shed: "+format, append([]any{domain.ErrOverloaded}, args...)...)
}

// waiting reports how many checks are waiting for a slot.
func (g *gate) waiting() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return int64(g.queued)
}
