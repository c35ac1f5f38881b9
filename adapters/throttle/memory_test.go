package throttle

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/domain"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var ctx = context.Background()

func newThrottle() (*Memory, *fakeClock) {
	clock := &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	return NewMemory(config.Throttle{Window: 15 * time.Minute, AccountFailures: 10, AddrFailures: 50}, clock), clock
}

// admitN admits n attempts for keys and fails the test if any is refused.
func admitN(t *testing.T, m *Memory, n int, keys ...string) {
	t.Helper()
	for i := range n {
		if err := m.Admit(ctx, keys...); err != nil {
			t.Fatalf("attempt %d of %d refused: %v", i+1, n, err)
		}
	}
}

// refusal returns how long the throttle tells a refused attempt for keys to wait, or 0 when it
// admits the attempt (which then counts).
func refusal(t *testing.T, m *Memory, keys ...string) time.Duration {
	t.Helper()
	err := m.Admit(ctx, keys...)
	if err == nil {
		return 0
	}
	var te *domain.ThrottledError
	if !errors.As(err, &te) {
		t.Fatalf("Admit returned %v, want a *domain.ThrottledError", err)
	}
	if te.RetryAfter < time.Second || te.RetryAfter%time.Second != 0 {
		t.Fatalf("RetryAfter = %v, want whole seconds, at least 1", te.RetryAfter)
	}
	return te.RetryAfter
}

// The behaviour of the port is the contract suite's (test/contract/throttle, run against
// Memory too); these tests look at what only Memory has: the keys it tracks.

func TestRefundAndResetForgetKeys(t *testing.T) {
	m, _ := newThrottle()
	const acct = "account:a@x.io"
	admitN(t, m, 2, acct)
	m.Refund(ctx, "account:unknown@x.io") // refunding an untracked key tracks nothing
	if n := m.Tracked(); n != 1 {
		t.Fatalf("tracking %d keys, want the one account", n)
	}
	m.Refund(ctx, acct)
	if n := m.Tracked(); n != 1 {
		t.Fatalf("after one of two attempts was refunded, tracking %d keys, want 1", n)
	}
	// A log whose attempts were all refunded is forgotten.
	m.Refund(ctx, acct)
	if n := m.Tracked(); n != 0 {
		t.Fatalf("an empty log is still tracked (%d keys)", n)
	}
	admitN(t, m, 1, acct)
	m.Reset(ctx, acct)
	if n := m.Tracked(); n != 0 {
		t.Fatalf("a reset key is still tracked (%d keys)", n)
	}
}

// TestLogsHoldAtMostTheLimit: however long a key is hammered, refused attempts are not kept,
// admitted ones leave the log with the window, and the slice behind the log does not grow
// with the attempts that left it.
func TestLogsHoldAtMostTheLimit(t *testing.T) {
	m, clock := newThrottle()
	const acct = "account:a@x.io"
	for range 10_000 {
		_ = m.Admit(ctx, acct)
		clock.Advance(time.Second)
	}
	l := m.kindOf(acct).byKey[acct]
	if n := len(l.live()); n == 0 || n > 10 {
		t.Fatalf("the log holds %d attempts, want 1 to the limit of 10", n)
	}
	if n := len(l.at); n > 2*10 {
		t.Fatalf("the log's slice holds %d times for at most 10 live ones", n)
	}
}

func TestIdleKeysAreDropped(t *testing.T) {
	m, clock := newThrottle()
	for i := range 100 {
		admitN(t, m, 1, fmt.Sprintf("addr:198.51.100.%d", i))
	}
	if n := m.Tracked(); n != 100 {
		t.Fatalf("tracked %d keys, want 100", n)
	}
	clock.Advance(15 * time.Minute)
	admitN(t, m, 1, "addr:203.0.113.1")
	if n := m.Tracked(); n != 1 {
		t.Fatalf("after a quiet window tracked %d keys, want only the new one", n)
	}
	clock.Advance(15 * time.Minute)
	m.Refund(ctx, "addr:203.0.113.1")
	if n := m.Tracked(); n != 0 {
		t.Fatalf("%d idle keys left", n)
	}
}

func TestKeyCountIsBounded(t *testing.T) {
	m, clock := newThrottle()
	const limit = 1000
	for _, k := range m.kinds {
		k.maxKeys = limit
	}
	const victim = "account:victim@x.io"
	admitN(t, m, 10, victim)
	addr := func(i int) string { return fmt.Sprintf("addr:10.%d.%d.%d", i>>16&255, i>>8&255, i&255) }
	// An attacker sprays addresses far beyond the cap, all within one window.
	for i := range 20 * limit {
		admitN(t, m, 1, addr(i))
		if i%100 == 0 {
			clock.Advance(time.Millisecond)
		}
	}
	if n := len(m.kindOf("addr:x").byKey); n > limit {
		t.Fatalf("tracking %d addresses, cap is %d", n, limit)
	}
	if n := m.Tracked(); n > limit+1 {
		t.Fatalf("tracking %d keys in all", n)
	}
	// The newest addresses are kept (the last one holds its one attempt: 49 more, then a
	// refusal) and the account's bucket was not evicted by them.
	admitN(t, m, 49, addr(20*limit-1))
	if refusal(t, m, addr(20*limit-1)) == 0 {
		t.Fatal("the newest address was forgotten")
	}
	if refusal(t, m, victim) == 0 {
		t.Fatal("spraying addresses evicted the account's attempts")
	}
	// Spraying accounts evicts the oldest account bucket first.
	for i := range limit {
		admitN(t, m, 1, fmt.Sprintf("account:spray%d@x.io", i))
	}
	if n := len(m.kindOf(AccountPrefix).byKey); n > limit {
		t.Fatalf("tracking %d accounts, cap is %d", n, limit)
	}
	if _, ok := m.kindOf(AccountPrefix).byKey[victim]; ok {
		t.Fatal("the oldest account bucket was not the one evicted")
	}
}

func TestConcurrentUse(t *testing.T) {
	m, clock := newThrottle()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 500 {
				keys := []string{fmt.Sprintf("account:u%d@x.io", i%7), fmt.Sprintf("addr:192.0.2.%d", w)}
				if m.Admit(ctx, keys...) == nil && i%3 == 0 {
					m.Refund(ctx, keys...)
				}
				if i%50 == 0 {
					m.Reset(ctx, keys[0])
					clock.Advance(time.Second)
				}
			}
		})
	}
	wg.Wait()
	if n := m.Tracked(); n > 7+8 {
		t.Fatalf("tracking %d keys, want at most 15", n)
	}
}
