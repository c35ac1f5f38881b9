package argon2id

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acme/postsvc/ports/accounts"

	"github.com/acme/postsvc/domain"
)

// gate hands out the hasher's slots fairly between clients, and sheds work that could not
// start soon instead of letting it queue towards the request timeout.
//
// A first-come-first-served semaphore lets one client that sends many requests at once fill
// the queue, so everybody else waits behind all of its work (a flood of signups from one
// address made another client's login wait 5 seconds and fail). The gate instead:
//
//   - lets one client hold at most maxRunningPerClient slots (by default half of them), so
//     while one address floods the hasher a slot is free for anyone else's check to start at
//     once, in about one hash time;
//   - when a slot frees and clients are waiting, gives it to the waiting client that holds the
//     fewest slots, the longest-unserved one among equals (round robin across clients, first
//     come first served within a client), so that when several addresses flood at once a
//     newcomer waits at most until the first running hash ends, never behind a flooder's
//     queue;
//   - lets each client keep at most maxPerClient checks waiting, and all clients together at
//     most maxQueued, and refuses beyond that at once with an error wrapping
//     domain.ErrOverloaded. When the whole queue is full, a client with fewer waiting checks
//     takes the place of the newest check of the client with the most waiting, so a few
//     flooding addresses together still cannot shut everyone else out;
//   - refuses at once, too, a check that by the recent hash time would not be done before
//     its request's deadline: when the machine is so busy that hashes take seconds, waiting
//     would only end in a timeout.
//
// The cap per client is what lets a newcomer start at once instead of waiting for a
// flooder's hash to end. Its price is that a client alone (or every client behind one
// untrusted proxy) uses only its share of the slots; with at least as many slots as cores,
// as by default, half of them still keep the cores busy. Setting it to the slot count makes
// the gate work-conserving.
type gate struct {
	slots               int
	maxRunningPerClient int
	maxQueued           int
	maxPerClient        int
	shed                atomic.Int64
	// hashTime is a moving average of how long a hash holds its slot, in nanoseconds; 0
	// until the first one ends.
	hashTime atomic.Int64

	mu      sync.Mutex
	running int
	queued  int
	// clients holds every client that has a slot or a waiting check, and no other, so its
	// size is bounded by slots plus maxQueued.
	clients map[accounts.ClientKey]*client
	// ready lists the clients that have waiting checks, in the order in which they are
	// offered a free slot; a client served goes to the back.
	ready []*client
}

// client is one client's share of the gate.
type client struct {
	key     accounts.ClientKey
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

func newGate(slots, maxRunningPerClient, maxQueued, maxPerClient int) *gate {
	return &gate{
		slots: slots, maxRunningPerClient: min(maxRunningPerClient, slots), maxQueued: maxQueued, maxPerClient: maxPerClient,
		clients: make(map[accounts.ClientKey]*client),
	}
}

// acquire returns with a slot held for key, to be given back with release, or with an error:
// one wrapping domain.ErrOverloaded, at once, when the check could not start soon; the
// context's when it was cancelled first; and when its deadline passed in the queue, both
// (the check did not start in time, which is load, not an unreachable dependency).
func (g *gate) acquire(ctx context.Context, key accounts.ClientKey) (*client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	g.mu.Lock()
	c := g.clients[key]
	if c == nil {
		c = &client{key: key}
		g.clients[key] = c
	}
	start, victim, why := g.decide(ctx, c)
	if start {
		c.running++
		g.running++
		g.mu.Unlock()
		return c, nil
	}
	if why != "" {
		g.forgetIfIdle(c)
		g.mu.Unlock()
		return nil, g.refusal("%s", why)
	}
	if victim != nil {
		g.pushOut(victim)
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

// decide says what acquire does with a check of c asked now, changing nothing: start it at
// once; or queue it, after pushing out victim's newest waiting check when victim is not nil;
// or refuse it, saying why.
func (g *gate) decide(ctx context.Context, c *client) (start bool, victim *client, why string) {
	// A free slot goes to a caller within its share at once: anyone waiting while a slot is
	// free is a client at its share (release hands a freed slot straight to any other).
	if g.running < g.slots && c.running < g.maxRunningPerClient {
		return true, nil, ""
	}
	if len(c.waiters) >= g.maxPerClient {
		return false, nil, fmt.Sprintf("this client already has %d password checks waiting", g.maxPerClient)
	}
	if late, ahead := g.tooLate(ctx, c); late {
		return false, nil, fmt.Sprintf("about %v of hashing is ahead of it, more than the request has left", ahead)
	}
	if g.queued >= g.maxQueued {
		if victim = g.victimFor(c); victim == nil {
			return false, nil, fmt.Sprintf("%d password checks are already waiting", g.maxQueued)
		}
	}
	return false, victim, ""
}

// refuses returns the error wrapping domain.ErrOverloaded that acquire would shed a check of
// key with if it asked now, or nil when the check would start or queue. It takes no slot and
// no place in the queue, so a caller can refuse work at once before spending anything on it;
// acquire still decides.
func (g *gate) refuses(ctx context.Context, key accounts.ClientKey) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.clients[key]
	if c == nil {
		c = &client{key: key}
	}
	if _, _, why := g.decide(ctx, c); why != "" {
		return g.refusal("%s", why)
	}
	return nil
}

// tooLate reports whether a check of c that queued now would not be done before ctx's
// deadline, estimating with the recent hash time: c's checks already waiting start a share
// at a time, this one after them once a slot frees, and then it runs. It also returns the
// estimate. Without a deadline or a hash time yet, nothing is too late.
func (g *gate) tooLate(ctx context.Context, c *client) (bool, time.Duration) {
	deadline, ok := ctx.Deadline()
	hash := time.Duration(g.hashTime.Load())
	if !ok || hash <= 0 {
		return false, 0
	}
	ahead := time.Duration(len(c.waiters)/g.maxRunningPerClient+2) * hash
	return time.Until(deadline) < ahead, ahead.Round(time.Millisecond)
}

// observe folds the time a hash held its slot into the moving average (one eighth of the
// way, so one slow hash does not make the gate refuse everything).
func (g *gate) observe(d time.Duration) {
	for {
		old := g.hashTime.Load()
		next := int64(d)
		if old > 0 {
			next = old + (int64(d)-old)/8
		}
		if g.hashTime.CompareAndSwap(old, next) {
			return
		}
	}
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
	for g.running < g.slots {
		if !g.grantNext() {
			return
		}
	}
}

// grantNext gives a slot to the first waiter of the ready client holding the fewest slots,
// below its share; among equals the one earliest in the ready order, which then goes to the
// back. It reports whether any client could have one.
func (g *gate) grantNext() bool {
	best := -1
	for i, c := range g.ready {
		if c.running < g.maxRunningPerClient && (best < 0 || c.running < g.ready[best].running) {
			best = i
		}
	}
	if best < 0 {
		return false
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
	return true
}

// victimFor returns the client whose newest waiting check would make room in a full queue
// for a check of c: the client with the most waiting (the one holding more slots among
// equals), when it has at least two more waiting than c; nil when there is none.
func (g *gate) victimFor(c *client) *client {
	var victim *client
	for _, r := range g.ready {
		if victim == nil || len(r.waiters) > len(victim.waiters) ||
			len(r.waiters) == len(victim.waiters) && r.running > victim.running {
			victim = r
		}
	}
	if victim == nil || len(victim.waiters) < len(c.waiters)+2 {
		return nil
	}
	return victim
}

// pushOut sheds victim's newest waiting check to make room in the queue.
func (g *gate) pushOut(victim *client) {
	last := len(victim.waiters) - 1
	w := victim.waiters[last]
	victim.waiters[last] = nil
	victim.waiters = victim.waiters[:last]
	g.queued--
	// The victim had at least two waiting checks, so it stays in the ready list.
	w.decided <- g.refusal("its place in the queue went to a client with fewer checks waiting")
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
