package argon2id

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/postsvc/ports/accounts"

	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/domain"
)

// granted is what an asynchronous acquire ended with.
type granted struct {
	key accounts.ClientKey
	c   *client
	err error
}

// acquireAsync starts acquire for key and returns where its outcome will be sent.
func acquireAsync(ctx context.Context, g *gate, key accounts.ClientKey) <-chan granted {
	out := make(chan granted, 1)
	go func() {
		c, err := g.acquire(ctx, key)
		out <- granted{key: key, c: c, err: err}
	}()
	return out
}

// queueAsync starts acquire for key and waits until it is queued, so that tests control the
// order of arrival.
func queueAsync(t *testing.T, g *gate, key accounts.ClientKey) <-chan granted {
	t.Helper()
	before := g.waiting()
	out := acquireAsync(context.Background(), g, key)
	waitFor(t, func() bool { return g.waiting() == before+1 }, "a check of %s to queue", key)
	return out
}

// holdNow acquires a slot for key that must be free.
func holdNow(t *testing.T, g *gate, key accounts.ClientKey) *client {
	t.Helper()
	c, err := g.acquire(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func waitFor(t *testing.T, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for "+format, args...)
		}
		time.Sleep(time.Millisecond)
	}
}

func receive(t *testing.T, ch <-chan granted) granted {
	t.Helper()
	select {
	case g := <-ch:
		return g
	case <-time.After(5 * time.Second):
		t.Fatal("an acquire did not end")
		return granted{}
	}
}

func expectWaiting(t *testing.T, chans ...<-chan granted) {
	t.Helper()
	time.Sleep(10 * time.Millisecond)
	for _, ch := range chans {
		select {
		case g := <-ch:
			t.Fatalf("a check of %s ended (%v) while it should still wait", g.key, g.err)
		default:
		}
	}
}

// expectShedAtOnce asks hold, then acquire, for key and requires an overload error from
// both, acquire's without waiting.
func expectShedAtOnce(t *testing.T, g *gate, key accounts.ClientKey) {
	t.Helper()
	if _, err := g.hold(context.Background(), key); !errors.Is(err, domain.ErrOverloaded) {
		t.Fatalf("hold(%s) = %v for a check that acquire sheds", key, err)
	}
	start := time.Now()
	res := receive(t, acquireAsync(context.Background(), g, key))
	if !errors.Is(res.err, domain.ErrOverloaded) {
		t.Fatalf("acquire for %s = %v, want an error wrapping domain.ErrOverloaded", key, res.err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("shedding took %v; it must not wait", d)
	}
}

// TestOneClientHoldsAtMostItsShare: a client at its share of the slots waits even with slots
// free, which stay for other clients, whose checks start at once.
func TestOneClientHoldsAtMostItsShare(t *testing.T) {
	g := newGate(4, 2, 16, 4)
	const flooder = "198.51.100.1"
	held := holdNow(t, g, flooder)
	holdNow(t, g, flooder)
	flood := []<-chan granted{queueAsync(t, g, flooder), queueAsync(t, g, flooder)}
	expectWaiting(t, flood...)
	// Another client starts at once, twice: the free slots were kept for others.
	holdNow(t, g, "203.0.113.7")
	holdNow(t, g, "203.0.113.8")
	if g.running != 4 {
		t.Fatalf("running = %d, want all 4 slots", g.running)
	}
	// When one of the flooder's checks ends, its next one takes the place.
	g.release(held)
	if res := receive(t, flood[0]); res.err != nil {
		t.Fatal(res.err)
	}
	expectWaiting(t, flood[1])
}

// TestANewcomerGetsTheNextFreeSlot: when floods hold every slot and have checks queued (here
// one client may hold them all, as when the share is the slot count or several addresses
// flood together), another client's check still gets the very next slot that frees, ahead of
// the floods' queues.
func TestANewcomerGetsTheNextFreeSlot(t *testing.T) {
	g := newGate(2, 2, 16, 4)
	const flooder, other = "198.51.100.1", "203.0.113.7"
	held := []*client{holdNow(t, g, flooder), holdNow(t, g, flooder)}
	flood := []<-chan granted{queueAsync(t, g, flooder), queueAsync(t, g, flooder), queueAsync(t, g, flooder)}
	mine := queueAsync(t, g, other)

	g.release(held[0])
	if res := receive(t, mine); res.err != nil {
		t.Fatal(res.err)
	}
	expectWaiting(t, flood...)
	// The flooder's own checks keep their order.
	g.release(held[1])
	if res := receive(t, flood[0]); res.err != nil {
		t.Fatal(res.err)
	}
	expectWaiting(t, flood[1:]...)
}

// TestWaitersAreServedRoundRobin queues three checks of A, three of B and one of C behind one
// slot: they are served A B C A B A B, not in order of arrival.
func TestWaitersAreServedRoundRobin(t *testing.T) {
	g := newGate(1, 1, 16, 4)
	holder := holdNow(t, g, "holder")
	var queued []<-chan granted
	for _, key := range []accounts.ClientKey{"A", "A", "A", "B", "B", "B", "C"} {
		queued = append(queued, queueAsync(t, g, key))
	}
	results := make(chan granted, len(queued))
	for _, ch := range queued {
		go func() { results <- <-ch }()
	}
	g.release(holder)
	var order []accounts.ClientKey
	for range queued {
		res := receive(t, results)
		if res.err != nil {
			t.Fatal(res.err)
		}
		order = append(order, res.key)
		g.release(res.c)
	}
	if got := fmt.Sprint(order); got != "[A B C A B A B]" {
		t.Fatalf("served %s, want [A B C A B A B]", got)
	}
}

// TestACheckStartsAtOnceBesideOneFlood: with the default share (half the slots), one
// address flooding leaves a slot free, so another client's check does not wait at all.
func TestACheckStartsAtOnceBesideOneFlood(t *testing.T) {
	g := newGate(2, 1, 16, 4)
	holdNow(t, g, "198.51.100.1")
	queueAsync(t, g, "198.51.100.1")
	queueAsync(t, g, "198.51.100.1")
	start := time.Now()
	holdNow(t, g, "203.0.113.7")
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the other client's check waited %v", d)
	}
}

func TestAClientsWaitingChecksAreBounded(t *testing.T) {
	g := newGate(1, 1, 16, 2)
	holdNow(t, g, "holder")
	queueAsync(t, g, "A")
	queueAsync(t, g, "A")
	expectShedAtOnce(t, g, "A")
	// Another client is not affected by A's bound.
	queueAsync(t, g, "B")
	// Refused twice: by hold, then by acquire (expectShedAtOnce asks both).
	if g.shed.Load() != 2 || g.waiting() != 3 {
		t.Fatalf("shed %d, waiting %d; want 2 and 3", g.shed.Load(), g.waiting())
	}
}

func TestTheQueueIsBounded(t *testing.T) {
	g := newGate(1, 1, 3, 3)
	holdNow(t, g, "holder")
	for _, key := range []accounts.ClientKey{"c1", "c2", "c3"} {
		queueAsync(t, g, key)
	}
	// Nobody has two checks more waiting than the newcomer, so the newcomer is the one shed.
	expectShedAtOnce(t, g, "c4")
	expectShedAtOnce(t, g, "c1")
	if g.waiting() != 3 {
		t.Fatalf("waiting %d, want the bound of 3", g.waiting())
	}
	if _, ok := g.clients["c4"]; ok {
		t.Fatal("a shed client is still tracked")
	}
}

// TestAFullQueueMakesRoomForAClientWithLessWaiting: when one client has filled the whole
// queue, a newcomer takes the place of that client's newest check, which is shed.
func TestAFullQueueMakesRoomForAClientWithLessWaiting(t *testing.T) {
	g := newGate(1, 1, 3, 3)
	holder := holdNow(t, g, "holder")
	a := []<-chan granted{queueAsync(t, g, "A"), queueAsync(t, g, "A"), queueAsync(t, g, "A")}
	b := acquireAsync(context.Background(), g, "B")
	if res := receive(t, a[2]); !errors.Is(res.err, domain.ErrOverloaded) {
		t.Fatalf("A's newest check: %v, want shed", res.err)
	}
	expectWaiting(t, a[0], a[1], b)
	if g.waiting() != 3 {
		t.Fatalf("waiting %d, want 3", g.waiting())
	}
	g.release(holder)
	first := receive(t, a[0])
	g.release(first.c)
	if res := receive(t, b); res.err != nil {
		t.Fatal(res.err)
	}
}

// holdPlace holds a place for key that the gate must give, and requires it to be a slot or
// a place in the queue as wantSlot says, taken from the gate's counts.
func holdPlace(t *testing.T, g *gate, key accounts.ClientKey, wantSlot bool) *ticket {
	t.Helper()
	running, waiting := g.running, g.waiting()
	h, err := g.hold(context.Background(), key)
	if err != nil {
		t.Fatalf("hold(%s) = %v for a check acquire would start or queue", key, err)
	}
	switch {
	case wantSlot && (h.w != nil || g.running != running+1 || g.waiting() != waiting):
		t.Fatalf("hold(%s) did not take a slot: running %d -> %d, waiting %d -> %d", key, running, g.running, waiting, g.waiting())
	case !wantSlot && (h.w == nil || g.running != running || g.waiting() != waiting+1):
		t.Fatalf("hold(%s) did not take a place in the queue: running %d -> %d, waiting %d -> %d", key, running, g.running, waiting, g.waiting())
	}
	return h
}

// takeAsync starts a check of key that takes a held place and waits in it.
func takeAsync(t *testing.T, g *gate, key accounts.ClientKey) <-chan granted {
	t.Helper()
	h := g.take(key)
	if h == nil {
		t.Fatalf("no place held for %s", key)
	}
	out := make(chan granted, 1)
	go func() {
		c, err := g.wait(context.Background(), h)
		out <- granted{key: key, c: c, err: err}
	}()
	return out
}

// TestHoldAgreesWithAcquire walks the gate through every way acquire starts, queues or sheds
// a check, holding each time instead: hold takes the very place acquire would have taken (a
// slot or a place in the queue) and refuses exactly the checks acquire sheds.
func TestHoldAgreesWithAcquire(t *testing.T) {
	g := newGate(1, 1, 3, 2)
	holdPlace(t, g, "holder", true) // a free slot
	holder := receive(t, takeAsync(t, g, "holder"))
	if holder.err != nil || g.running != 1 {
		t.Fatalf("the check took its held slot: %v, running %d", holder.err, g.running)
	}
	holdPlace(t, g, "A", false) // places in the queue
	holdPlace(t, g, "A", false)
	expectShedAtOnce(t, g, "A") // A's own bound of waiting checks
	holdPlace(t, g, "B", false)
	// The queue is full. C takes the place of A's newest; B, with one waiting already, would
	// not (A has only one more).
	expectShedAtOnce(t, g, "B")
	if h, err := g.hold(context.Background(), "C"); err != nil || h.w == nil || g.waiting() != 3 {
		t.Fatalf("hold(C) in a full queue = %v; waiting %d, want C in A's newest place", err, g.waiting())
	}
	a := []<-chan granted{takeAsync(t, g, "A"), takeAsync(t, g, "A")}
	if res := receive(t, a[1]); !errors.Is(res.err, domain.ErrOverloaded) {
		t.Fatalf("the check in A's newest place: %v, want pushed out", res.err)
	}
	b, c := takeAsync(t, g, "B"), takeAsync(t, g, "C")
	expectWaiting(t, a[0], b, c)

	// A check that could not be done before its deadline.
	g.observe(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := g.hold(ctx, "D"); !errors.Is(err, domain.ErrOverloaded) {
		t.Fatalf("hold for a check with 100 ms left behind 1 s hashes = %v", err)
	}
	// Served in turn, none refused after its place was held.
	g.release(holder.c)
	for _, ch := range []<-chan granted{a[0], b, c} {
		res := receive(t, ch)
		if res.err != nil {
			t.Fatalf("the check in %s's held place: %v", res.key, res.err)
		}
		g.release(res.c)
	}
	if g.running != 0 || g.waiting() != 0 || len(g.clients) != 0 {
		t.Fatalf("after every check: running %d, waiting %d, clients %d", g.running, g.waiting(), len(g.clients))
	}
}

// TestABurstIsCountedAsItArrives: 100 checks of one client arrive together beside another
// client's running check. Exactly the places the bounds allow are held (one slot within the
// client's share and two in the queue), the rest are refused at once, and every check whose
// place was held is served, whatever time passes between the hold and the check. A look that
// held nothing would let the whole burst through, to be shed later by acquire.
func TestABurstIsCountedAsItArrives(t *testing.T) {
	g := newGate(2, 1, 8, 2)
	other := holdNow(t, g, "other")
	var held, refused atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 100 {
		wg.Go(func() {
			<-start
			_, err := g.hold(context.Background(), "flood")
			switch {
			case err == nil:
				held.Add(1)
			case errors.Is(err, domain.ErrOverloaded):
				refused.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	if held.Load() != 3 || refused.Load() != 97 {
		t.Fatalf("held %d and refused %d of 100, want 3 and 97", held.Load(), refused.Load())
	}
	expectShedAtOnce(t, g, "flood") // the held places count until taken
	checks := []<-chan granted{takeAsync(t, g, "flood"), takeAsync(t, g, "flood"), takeAsync(t, g, "flood")}
	g.release(other)
	for range checks {
		// One runs at a time (the client's share); each release lets the next one start.
		var res granted
		select {
		case res = <-checks[0]:
		case res = <-checks[1]:
		case res = <-checks[2]:
		case <-time.After(5 * time.Second):
			t.Fatal("a held check was not served")
		}
		if res.err != nil {
			t.Fatalf("a check whose place was held: %v", res.err)
		}
		g.release(res.c)
	}
}

// TestAnUnusedHoldIsGivenBack: unhold gives back a held slot, a held place in the queue, and
// a slot granted to a held place before any check came, which goes on to the next waiter; it
// does nothing once a check has taken the place. A held slot whose request has ended is given
// back by the check that takes it.
func TestAnUnusedHoldIsGivenBack(t *testing.T) {
	g := newGate(1, 1, 4, 4)
	g.unhold(holdPlace(t, g, "A", true))
	if g.running != 0 || len(g.clients) != 0 {
		t.Fatalf("after unhold of a slot: running %d, clients %d", g.running, len(g.clients))
	}
	holder := holdNow(t, g, "holder")
	g.unhold(holdPlace(t, g, "A", false))
	if g.waiting() != 0 {
		t.Fatalf("after unhold of a queue place: waiting %d", g.waiting())
	}
	granted := holdPlace(t, g, "A", false)
	next := queueAsync(t, g, "B")
	g.release(holder) // the slot goes to A's held place, where no check is yet
	if g.running != 1 || g.waiting() != 1 {
		t.Fatalf("running %d, waiting %d; want A's place granted", g.running, g.waiting())
	}
	g.unhold(granted)
	res := receive(t, next)
	if res.err != nil {
		t.Fatal(res.err)
	}
	// Taken, then unhold: nothing changes.
	h := holdPlace(t, g, "C", false)
	taken := takeAsync(t, g, "C")
	g.unhold(h)
	if g.waiting() != 1 {
		t.Fatalf("unhold after the check took the place: waiting %d, want 1", g.waiting())
	}
	g.release(res.c)
	g.release(receive(t, taken).c)

	// A held slot whose request ended before its check came.
	ctx, cancel := context.WithCancel(context.Background())
	holdPlace(t, g, "D", true)
	cancel()
	if _, err := g.wait(ctx, g.take("D")); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait in a held slot after the request ended = %v", err)
	}
	if g.running != 0 || len(g.clients) != 0 {
		t.Fatalf("at the end: running %d, clients %d", g.running, len(g.clients))
	}
}

func TestACancelledCheckLeavesTheQueue(t *testing.T) {
	g := newGate(1, 1, 16, 4)
	holder := holdNow(t, g, "holder")
	ctx, cancel := context.WithCancel(context.Background())
	out := acquireAsync(ctx, g, "A")
	waitFor(t, func() bool { return g.waiting() == 1 }, "the check to queue")
	cancel()
	if res := receive(t, out); !errors.Is(res.err, context.Canceled) {
		t.Fatalf("cancelled check: %v, want context.Canceled", res.err)
	}
	g.release(holder)
	if g.waiting() != 0 || g.running != 0 || len(g.clients) != 0 || len(g.ready) != 0 {
		t.Fatalf("state left behind: waiting %d, running %d, clients %d, ready %d", g.waiting(), g.running, len(g.clients), len(g.ready))
	}
}

// TestACheckOutOfTimeInTheQueueIsOverloaded: a check whose request deadline passes while it
// waits did not start because of load, so it is shed as overloaded (and counted), not
// reported as a dependency timeout; the deadline stays visible in the error.
func TestACheckOutOfTimeInTheQueueIsOverloaded(t *testing.T) {
	g := newGate(1, 1, 16, 4)
	holdNow(t, g, "holder")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := g.acquire(ctx, "A")
	if !errors.Is(err, domain.ErrOverloaded) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("acquire past its deadline = %v, want ErrOverloaded wrapping DeadlineExceeded", err)
	}
	if g.shed.Load() != 1 || g.waiting() != 0 {
		t.Fatalf("shed %d, waiting %d; want 1 and 0", g.shed.Load(), g.waiting())
	}
}

// TestGateUnderChurn runs many clients that queue, give up and finish at random, and checks
// that the slots are never over-committed and that nothing is left behind.
func TestGateUnderChurn(t *testing.T) {
	const slots, share = 3, 2
	g := newGate(slots, share, 8, 2)
	var inside, peak atomic.Int64
	var perClient [5]atomic.Int64
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range 100 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(r.IntN(2000))*time.Microsecond)
				k := r.IntN(len(perClient))
				c, err := g.acquire(ctx, accounts.ClientKey(fmt.Sprint(k)))
				if err == nil {
					if mine := perClient[k].Add(1); mine > share {
						t.Errorf("client %d holds %d slots, its share is %d", k, mine, share)
					}
					n := inside.Add(1)
					for {
						old := peak.Load()
						if n <= old || peak.CompareAndSwap(old, n) {
							break
						}
					}
					time.Sleep(time.Duration(r.IntN(200)) * time.Microsecond)
					inside.Add(-1)
					perClient[k].Add(-1)
					g.release(c)
				} else if !errors.Is(err, domain.ErrOverloaded) && !errors.Is(err, context.DeadlineExceeded) {
					// Shed, or a deadline that passed before acquire was called (returned as it
					// is), are the only ways to fail here.
					t.Error(err)
				}
				cancel()
			}
		})
	}
	wg.Wait()
	if peak.Load() > slots {
		t.Fatalf("%d checks held a slot at once, there are %d", peak.Load(), slots)
	}
	if g.waiting() != 0 || g.running != 0 || len(g.clients) != 0 || len(g.ready) != 0 {
		t.Fatalf("state left behind: waiting %d, running %d, clients %d, ready %d", g.waiting(), g.running, len(g.clients), len(g.ready))
	}
}

// TestAnotherClientIsServedDuringAFlood drives the hasher itself, with a derivation that
// takes a known 20 ms: one client floods it from 40 goroutines while another checks a
// password five times. With the default share the flood holds one of the two slots, so the
// other client's checks start at once and take about one derivation (never the flood's
// queue), and the flood's surplus is shed at once.
func TestAnotherClientIsServedDuringAFlood(t *testing.T) {
	const derivation = 20 * time.Millisecond
	h := NewHasher(config.Auth{Argon2MemoryKiB: 64, Argon2Iterations: 1, Argon2Parallelism: 1, MaxConcurrentHashes: 2})
	h.derive = func(_, _ []byte, _ params, n uint32) []byte {
		time.Sleep(derivation)
		return make([]byte, n)
	}
	hash, err := h.Hash(context.Background(), "203.0.113.7", "password1")
	if err != nil {
		t.Fatal(err)
	}
	var (
		stop     atomic.Bool
		shed     atomic.Int64
		shedSlow atomic.Int64 // nanoseconds of the slowest refusal
		wg       sync.WaitGroup
	)
	for range 40 {
		wg.Go(func() {
			for !stop.Load() {
				start := time.Now()
				_, err := h.Hash(context.Background(), "198.51.100.1", "flood password")
				if errors.Is(err, domain.ErrOverloaded) {
					shed.Add(1)
					if d := int64(time.Since(start)); d > shedSlow.Load() {
						shedSlow.Store(d)
					}
					time.Sleep(time.Millisecond)
				} else if err != nil {
					t.Error(err)
				}
			}
		})
	}
	time.Sleep(5 * derivation) // the flood fills the slots and the queue
	var slowest time.Duration
	for range 5 {
		start := time.Now()
		if _, err := h.Verify(context.Background(), "203.0.113.7", hash, "password1"); err != nil {
			t.Fatalf("the other client's check failed during the flood: %v", err)
		}
		slowest = max(slowest, time.Since(start))
	}
	stop.Store(true)
	wg.Wait()
	// One derivation, plus generous scheduling slack. Behind a first-come-first-served queue
	// of the flood it would take ten derivations or more.
	if slowest > 4*derivation {
		t.Fatalf("the other client's slowest check took %v during the flood, want about %v", slowest, derivation)
	}
	if shed.Load() == 0 {
		t.Fatal("the flood was never shed")
	}
	if d := time.Duration(shedSlow.Load()); d > 5*derivation {
		t.Fatalf("the slowest refusal took %v; shedding must not wait", d)
	}
	if h.Shed() != shed.Load() || h.Queued() != 0 {
		t.Fatalf("Shed() = %d (saw %d), Queued() = %d after the flood", h.Shed(), shed.Load(), h.Queued())
	}
	t.Logf("other client's slowest check %v; %d flood checks shed, the slowest refusal in %v", slowest, shed.Load(), time.Duration(shedSlow.Load()))
}

// TestACheckThatCouldNotFinishInTimeIsShedAtOnce: when recent hashes took a second, a check
// with half a second left before its deadline is refused at once rather than queued towards
// a timeout, while one with time enough waits its turn.
func TestACheckThatCouldNotFinishInTimeIsShedAtOnce(t *testing.T) {
	g := newGate(1, 1, 16, 4)
	g.observe(time.Second)
	holder := holdNow(t, g, "holder")
	short, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := g.acquire(short, "A"); !errors.Is(err, domain.ErrOverloaded) {
		t.Fatalf("a check with 500 ms left behind 1 s hashes: %v, want shed", err)
	}
	// Queued, it would wait for its 500 ms deadline; half of that leaves room for a loaded
	// race-built run.
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Fatalf("shedding it took %v; it must not wait", d)
	}
	long, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	queued := acquireAsync(long, g, "A")
	waitFor(t, func() bool { return g.waiting() == 1 }, "the check with time enough to queue")
	g.release(holder)
	if res := receive(t, queued); res.err != nil {
		t.Fatal(res.err)
	}
}

// TestOneStalledHashDoesNotShedChecksThatWouldFinish: one hash stalled for a second among
// hashes of 30 ms moves the average by an eighth at most, so a client's 62 waiting checks
// (64 clients behind one address, two slots) with 5 s left are still queued; hashes that stay
// slow do make the gate shed.
func TestOneStalledHashDoesNotShedChecksThatWouldFinish(t *testing.T) {
	g := newGate(2, 2, 1000, 1000)
	for range 20 {
		g.observe(30 * time.Millisecond)
	}
	g.observe(time.Second)
	if got := time.Duration(g.hashTime.Load()); got > 30*time.Millisecond*9/8 {
		t.Fatalf("after one stalled hash the average is %v, want at most an eighth over 30 ms", got)
	}
	c := &client{waiters: make([]*waiter, 62)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if late, ahead := g.tooLate(ctx, c); late {
		t.Fatalf("a check behind 62 of its client's with 5 s left is shed (estimate %v)", ahead)
	}
	for range 40 {
		g.observe(time.Second)
	}
	if late, ahead := g.tooLate(ctx, c); !late {
		t.Fatalf("after 40 hashes of 1 s the check is still queued (estimate %v)", ahead)
	}
}

func TestTheHashTimeIsAMovingAverage(t *testing.T) {
	g := newGate(1, 1, 16, 4)
	g.observe(80 * time.Millisecond)
	g.observe(160 * time.Millisecond)
	if got := time.Duration(g.hashTime.Load()); got != 90*time.Millisecond {
		t.Fatalf("after 80 ms and 160 ms the average is %v, want 90 ms (an eighth of the way)", got)
	}
}
