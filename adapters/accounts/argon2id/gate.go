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
//     would only end in a timeout;
//   - decides when the check arrives (hold), before the caller's other work for it (a
//     shared throttle's round trips, a user lookup), and keeps its slot or queue place for
//     it meanwhile: a burst is counted as it arrives, so the checks beyond the bounds are
//     refused at once and the others are not refused by the bounds after that work. A slot
//     given to a held place sits idle until its check comes, a round trip or a lookup, which
//     is little next to a hash.
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
	// held lists the places (slots or waiters of this client) that hold gave and no check
	// has taken yet, oldest first.
	held []*ticket
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
	t, err := g.enter(ctx, key, false)
	if err != nil {
		return nil, err
	}
	return g.wait(ctx, t)
}

// ticket is a check's place in the gate: a slot (w is nil) or a place in the queue.
type ticket struct {
	c *client
	w *waiter
}

// enter gives a check of key its place in the gate at once, a slot or a place in the queue,
// or refuses it with an error wrapping domain.ErrOverloaded. With held, the ticket is also
// put aside in the client's held list for a later check of key to take (see hold).
func (g *gate) enter(ctx context.Context, key accounts.ClientKey, held bool) (*ticket, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.clients[key]
	if c == nil {
		c = &client{key: key}
		g.clients[key] = c
	}
	start, victim, why := g.decide(ctx, c)
	t := &ticket{c: c}
	switch {
	case start:
		c.running++
		g.running++
	case why != "":
		g.forgetIfIdle(c)
		return nil, g.refusal("%s", why)
	default:
		if victim != nil {
			g.pushOut(victim)
		}
		t.w = &waiter{c: c, decided: make(chan error, 1)}
		c.waiters = append(c.waiters, t.w)
		g.queued++
		if len(c.waiters) == 1 {
			g.ready = append(g.ready, c)
		}
	}
	if held {
		c.held = append(c.held, t)
	}
	return t, nil
}

// wait returns once t's check has a slot, to be given back with release, or with the error
// that shed it; see acquire.
func (g *gate) wait(ctx context.Context, t *ticket) (*client, error) {
	if t.w == nil {
		if err := ctx.Err(); err != nil {
			// A slot held for a check whose request has ended since.
			g.release(t.c)
			return nil, err
		}
		return t.c, nil
	}
	select {
	case err := <-t.w.decided:
		if err != nil {
			return nil, err
		}
		return t.c, nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.leaveLocked(t)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil, g.refusal("no slot before the request's deadline: %w", ctx.Err())
	}
	return nil, ctx.Err()
}

// leaveLocked gives back a ticket that no check will use: its slot, a slot it was given as
// it left (to the next waiter at once), or its place in the queue.
func (g *gate) leaveLocked(t *ticket) {
	if t.w == nil {
		g.releaseLocked(t.c)
		return
	}
	select {
	case err := <-t.w.decided:
		// decided is written under the gate's lock, so this read is final.
		if err == nil {
			g.releaseLocked(t.c)
		}
	default:
		g.removeWaiter(t.w)
	}
}

// hold gives a check of key its place in the gate now, as acquire would, or refuses it at
// once; the check itself comes later and takes the place with take. The caller must give the
// place back with unhold, which does nothing once a check has taken it.
//
// Holding a place first is what makes shedding at the door exact: a burst of checks that
// arrive together is counted as it arrives, so those beyond the bounds are refused at once
// and those admitted are not refused later by the bounds, whatever they do in between (a
// shared throttle's round trips, a user lookup).
func (g *gate) hold(ctx context.Context, key accounts.ClientKey) (*ticket, error) {
	return g.enter(ctx, key, true)
}

// take returns the oldest place held for key that no check has taken yet, or nil. The places
// held for one client are alike, so any check of the client may take any of them.
func (g *gate) take(key accounts.ClientKey) *ticket {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.clients[key]
	if c == nil || len(c.held) == 0 {
		return nil
	}
	t := c.held[0]
	c.held[0] = nil
	c.held = c.held[1:]
	return t
}

// unhold gives back t's place if no check has taken it.
func (g *gate) unhold(t *ticket) {
	g.mu.Lock()
	defer g.mu.Unlock()
	i := slices.Index(t.c.held, t)
	if i < 0 {
		return
	}
	t.c.held = slices.Delete(t.c.held, i, i+1)
	g.leaveLocked(t)
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

// observe folds the time a hash held its slot into the moving average: one eighth of the
// way, and a sample counts as at most twice the average, so that one hash stalled for a
// second (a pause of the whole machine, which the load runner's hashing ceiling also meets)
// raises the average by an eighth at most instead of several-fold, which made the gate shed
// checks that then would have finished in time (43 of 760 logins of 64 clients in one load
// run). Hashes that stay slow still raise it by an eighth each, so a machine busy for real
// is noticed within a few dozen hashes.
func (g *gate) observe(d time.Duration) {
	for {
		old := g.hashTime.Load()
		next := int64(d)
		if old > 0 {
			next = old + (min(int64(d), 2*old)-old)/8
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
