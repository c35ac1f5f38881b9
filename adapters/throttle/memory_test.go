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

// retryAfter returns the throttle's answer for keys: 0 when allowed, the wait when blocked.
func retryAfter(t *testing.T, m *Memory, keys ...string) time.Duration {
	t.Helper()
	err := m.Check(ctx, keys...)
	if err == nil {
		return 0
	}
	var te *domain.ThrottledError
	if !errors.As(err, &te) {
		t.Fatalf("Check returned %v, want a *domain.ThrottledError", err)
	}
	if te.RetryAfter < time.Second || te.RetryAfter%time.Second != 0 {
		t.Fatalf("RetryAfter = %v, want whole seconds, at least 1", te.RetryAfter)
	}
	return te.RetryAfter
}

func fail(m *Memory, n int, keys ...string) {
	for range n {
		m.Failure(ctx, keys...)
	}
}

func TestLimitReachedThenRefills(t *testing.T) {
	m, clock := newThrottle()
	const acct = "account:a@x.io"
	fail(m, 9, acct)
	if d := retryAfter(t, m, acct); d != 0 {
		t.Fatalf("blocked after 9 of 10 failures (retry after %v)", d)
	}
	fail(m, 1, acct)
	// Ten failures empty the bucket; one attempt comes back every 15m/10 = 90s.
	if d := retryAfter(t, m, acct); d != 90*time.Second {
		t.Fatalf("after 10 failures RetryAfter = %v, want 90s", d)
	}
	clock.Advance(30 * time.Second)
	if d := retryAfter(t, m, acct); d != 60*time.Second {
		t.Fatalf("30s later RetryAfter = %v, want 60s", d)
	}
	clock.Advance(60 * time.Second)
	if d := retryAfter(t, m, acct); d != 0 {
		t.Fatalf("after waiting RetryAfter, still blocked for %v", d)
	}
	// The refilled token is one attempt, not a reset.
	fail(m, 1, acct)
	if d := retryAfter(t, m, acct); d != 90*time.Second {
		t.Fatalf("failing the refilled attempt: RetryAfter = %v, want 90s", d)
	}
	// A whole window without failures refills the bucket completely.
	clock.Advance(15 * time.Minute)
	fail(m, 9, acct)
	if d := retryAfter(t, m, acct); d != 0 {
		t.Fatalf("after a quiet window, 9 failures blocked for %v", d)
	}
}

func TestFailuresWhileEmptyDoNotExtendBeyondWindow(t *testing.T) {
	m, clock := newThrottle()
	const acct = "account:victim@x.io"
	// An attacker keeps failing long after the bucket is empty.
	fail(m, 1000, acct)
	if d := retryAfter(t, m, acct); d != 90*time.Second {
		t.Fatalf("RetryAfter = %v, want one refill interval (90s) however many failures", d)
	}
	// Once the attacker stops, the owner can try again within one interval and has the full
	// budget back within the window.
	clock.Advance(90 * time.Second)
	if d := retryAfter(t, m, acct); d != 0 {
		t.Fatalf("owner still blocked for %v after the attacker stopped", d)
	}
	clock.Advance(15*time.Minute - 90*time.Second)
	fail(m, 9, acct)
	if d := retryAfter(t, m, acct); d != 0 {
		t.Fatalf("budget not fully back one window after the attack: blocked for %v", d)
	}
}

func TestSuccessResets(t *testing.T) {
	m, _ := newThrottle()
	keys := []string{"account:a@x.io", "addr:192.0.2.1"}
	fail(m, 10, keys...)
	if retryAfter(t, m, keys[0]) == 0 {
		t.Fatal("account not blocked after 10 failures")
	}
	m.Success(ctx, keys[0])
	if d := retryAfter(t, m, keys[0]); d != 0 {
		t.Fatalf("blocked for %v after Success", d)
	}
	fail(m, 9, keys[0])
	if d := retryAfter(t, m, keys[0]); d != 0 {
		t.Fatalf("Success did not restore the full budget: blocked for %v", d)
	}
	// Success on one key leaves the others alone: the address still has its 10 failures.
	fail(m, 40, keys[1])
	if d := retryAfter(t, m, keys[1]); d == 0 {
		t.Fatal("address not blocked after 50 failures; Success cleared a key it was not given")
	}
	m.Success(ctx, "account:unknown@x.io") // clearing an untracked key is harmless
}

func TestAccountAndAddrLimitsAreIndependent(t *testing.T) {
	m, _ := newThrottle()
	const acct, addr = "account:a@x.io", "addr:192.0.2.1"
	fail(m, 10, acct, addr)
	if retryAfter(t, m, acct) == 0 {
		t.Fatal("account not blocked at its limit of 10")
	}
	if d := retryAfter(t, m, addr); d != 0 {
		t.Fatalf("address blocked after 10 of its 50 failures (retry after %v)", d)
	}
	// Checking both reports the blocked one.
	if retryAfter(t, m, addr, acct) == 0 {
		t.Fatal("Check with both keys let a blocked account through")
	}
	// The same address may try other accounts until its own limit.
	for i := range 39 {
		m.Failure(ctx, fmt.Sprintf("account:user%d@x.io", i), addr)
	}
	if d := retryAfter(t, m, addr, "account:fresh@x.io"); d != 0 {
		t.Fatalf("address blocked after 49 failures (retry after %v)", d)
	}
	m.Failure(ctx, addr)
	// 50 failures per 15 minutes refill one every 18 seconds.
	if d := retryAfter(t, m, "account:fresh@x.io", addr); d != 18*time.Second {
		t.Fatalf("address RetryAfter = %v, want 18s", d)
	}
	// The longest wait among blocked keys wins.
	if d := retryAfter(t, m, addr, acct); d != 90*time.Second {
		t.Fatalf("RetryAfter for both = %v, want the account's 90s", d)
	}
}

func TestOtherKeysGetTheAccountLimit(t *testing.T) {
	m, _ := newThrottle()
	fail(m, 10, "something-else")
	if retryAfter(t, m, "something-else") == 0 {
		t.Fatal("an unprefixed key was not limited like an account")
	}
}

func TestRetryAfterRoundsUp(t *testing.T) {
	clock := &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	// 3 failures per 10s: one token every 3.33s.
	m := NewMemory(config.Throttle{Window: 10 * time.Second, AccountFailures: 3, AddrFailures: 3}, clock)
	const acct = "account:a@x.io"
	fail(m, 3, acct)
	if d := retryAfter(t, m, acct); d != 4*time.Second {
		t.Fatalf("RetryAfter = %v, want 3.33s rounded up to 4s", d)
	}
	clock.Advance(3300 * time.Millisecond)
	if d := retryAfter(t, m, acct); d != time.Second {
		t.Fatalf("with 34ms left RetryAfter = %v, want the 1s minimum", d)
	}
	clock.Advance(34 * time.Millisecond)
	if d := retryAfter(t, m, acct); d != 0 {
		t.Fatalf("after the refill interval still blocked for %v", d)
	}
}

func TestClockGoingBackwardsDoesNotLengthenBlock(t *testing.T) {
	m, clock := newThrottle()
	const acct = "account:a@x.io"
	fail(m, 10, acct)
	clock.Advance(-24 * time.Hour)
	if d := retryAfter(t, m, acct); d > 90*time.Second {
		t.Fatalf("after the clock stepped back RetryAfter = %v, want at most 90s", d)
	}
}

func TestIdleKeysAreDropped(t *testing.T) {
	m, clock := newThrottle()
	for i := range 100 {
		m.Failure(ctx, fmt.Sprintf("addr:198.51.100.%d", i))
	}
	if n := m.Tracked(); n != 100 {
		t.Fatalf("tracked %d keys, want 100", n)
	}
	clock.Advance(15 * time.Minute)
	m.Failure(ctx, "addr:203.0.113.1")
	if n := m.Tracked(); n != 1 {
		t.Fatalf("after a quiet window tracked %d keys, want only the new one", n)
	}
	clock.Advance(15 * time.Minute)
	if err := m.Check(ctx, "addr:203.0.113.1"); err != nil {
		t.Fatal(err)
	}
	if n := m.Tracked(); n != 0 {
		t.Fatalf("Check left %d idle keys", n)
	}
}

func TestKeyCountIsBounded(t *testing.T) {
	m, clock := newThrottle()
	const limit = 1000
	for _, k := range m.kinds {
		k.maxKeys = limit
	}
	const victim = "account:victim@x.io"
	fail(m, 10, victim)
	// An attacker sprays addresses far beyond the cap, all within one window.
	for i := range 20 * limit {
		m.Failure(ctx, fmt.Sprintf("addr:10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
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
	// The newest addresses are kept and the account's bucket was not evicted by them.
	if retryAfter(t, m, fmt.Sprintf("addr:10.%d.%d.%d", (20*limit-1)>>16&255, (20*limit-1)>>8&255, (20*limit-1)&255)) != 0 {
		t.Fatal("one failure blocked an address")
	}
	if retryAfter(t, m, victim) == 0 {
		t.Fatal("spraying addresses evicted the account's failures")
	}
	// Spraying accounts evicts the oldest account bucket first.
	for i := range limit {
		m.Failure(ctx, fmt.Sprintf("account:spray%d@x.io", i))
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
				_ = m.Check(ctx, keys...)
				m.Failure(ctx, keys...)
				if i%50 == 0 {
					m.Success(ctx, keys[0])
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

func TestZeroConfigUsesDefaults(t *testing.T) {
	clock := &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	m := NewMemory(config.Throttle{}, clock)
	fail(m, DefaultAccountFailures, "account:a@x.io")
	if d := retryAfter(t, m, "account:a@x.io"); d != DefaultWindow/DefaultAccountFailures {
		t.Fatalf("RetryAfter = %v, want %v", d, DefaultWindow/DefaultAccountFailures)
	}
}
