package throttle

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
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

func TestLimitReachedThenRefills(t *testing.T) {
	m, clock := newThrottle()
	const acct = "account:a@x.io"
	admitN(t, m, 10, acct)
	// Ten attempts empty the bucket; one attempt comes back every 15m/10 = 90s.
	if d := refusal(t, m, acct); d != 90*time.Second {
		t.Fatalf("the 11th attempt: RetryAfter = %v, want 90s", d)
	}
	clock.Advance(30 * time.Second)
	if d := refusal(t, m, acct); d != 60*time.Second {
		t.Fatalf("30s later RetryAfter = %v, want 60s", d)
	}
	clock.Advance(60 * time.Second)
	if d := refusal(t, m, acct); d != 0 {
		t.Fatalf("after waiting RetryAfter, still refused for %v", d)
	}
	// The refilled token was one attempt, not a reset.
	if d := refusal(t, m, acct); d != 90*time.Second {
		t.Fatalf("after the refilled attempt: RetryAfter = %v, want 90s", d)
	}
	// A whole window without attempts refills the bucket completely.
	clock.Advance(15 * time.Minute)
	admitN(t, m, 10, acct)
	if refusal(t, m, acct) == 0 {
		t.Fatal("an 11th attempt was admitted after a quiet window")
	}
}

func TestRefusedAttemptsTakeNothing(t *testing.T) {
	m, clock := newThrottle()
	const acct = "account:victim@x.io"
	admitN(t, m, 10, acct)
	// An attacker keeps trying long after the bucket is empty.
	for range 1000 {
		_ = m.Admit(ctx, acct)
	}
	if d := refusal(t, m, acct); d != 90*time.Second {
		t.Fatalf("RetryAfter = %v, want one refill interval (90s) however many refusals", d)
	}
	// Once the attacker stops, the owner can try again within one interval and has the full
	// budget back within the window.
	clock.Advance(90 * time.Second)
	if d := refusal(t, m, acct); d != 0 {
		t.Fatalf("owner still refused for %v after the attacker stopped", d)
	}
	clock.Advance(15 * time.Minute)
	admitN(t, m, 10, acct)
}

// TestConcurrentAttemptsNeverExceedTheLimit is the property the whole port exists for: many
// attempts at once for one account, each from its own address, admit exactly the account's
// budget. A check followed by a separate record would let every one of them through.
func TestConcurrentAttemptsNeverExceedTheLimit(t *testing.T) {
	m, _ := newThrottle()
	const attempts = 150
	var admitted, refused atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range attempts {
		wg.Go(func() {
			<-start
			err := m.Admit(ctx, "account:victim@x.io", fmt.Sprintf("addr:198.51.100.%d", i))
			var te *domain.ThrottledError
			switch {
			case err == nil:
				admitted.Add(1)
			case errors.As(err, &te):
				refused.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	if admitted.Load() != 10 || refused.Load() != attempts-10 {
		t.Fatalf("admitted %d and refused %d of %d concurrent attempts; want exactly 10 admitted", admitted.Load(), refused.Load(), attempts)
	}
}

func TestRefundGivesBackOneAttempt(t *testing.T) {
	m, _ := newThrottle()
	const acct = "account:a@x.io"
	admitN(t, m, 10, acct)
	m.Refund(ctx, acct)
	admitN(t, m, 1, acct)
	if refusal(t, m, acct) == 0 {
		t.Fatal("one refund gave back more than one attempt")
	}
	// Refunds beyond what was taken do not raise a bucket above its limit.
	m.Reset(ctx, acct)
	admitN(t, m, 2, acct)
	for range 5 {
		m.Refund(ctx, acct)
	}
	admitN(t, m, 10, acct)
	if refusal(t, m, acct) == 0 {
		t.Fatal("refunds raised the budget above the limit")
	}
	m.Refund(ctx, "account:unknown@x.io") // refunding an untracked key is harmless
	if n := m.Tracked(); n != 1 {
		t.Fatalf("tracking %d keys, want the one account", n)
	}
	// A bucket refunded back to full is forgotten.
	m.Reset(ctx, acct)
	admitN(t, m, 1, acct)
	m.Refund(ctx, acct)
	if n := m.Tracked(); n != 0 {
		t.Fatalf("a full bucket is still tracked (%d keys)", n)
	}
}

func TestResetRestoresTheWholeBudget(t *testing.T) {
	m, _ := newThrottle()
	keys := []string{"account:a@x.io", "addr:192.0.2.1"}
	admitN(t, m, 10, keys...)
	m.Reset(ctx, keys[0])
	admitN(t, m, 10, keys[0])
	if refusal(t, m, keys[0]) == 0 {
		t.Fatal("Reset gave back more than the limit")
	}
	// Reset of one key leaves the others alone: the address still holds its 10 attempts.
	admitN(t, m, 40, keys[1])
	if refusal(t, m, keys[1]) == 0 {
		t.Fatal("address admitted a 51st attempt; Reset cleared a key it was not given")
	}
	m.Reset(ctx, "account:unknown@x.io") // resetting an untracked key is harmless
}

func TestAccountAndAddrLimitsAreIndependent(t *testing.T) {
	m, _ := newThrottle()
	const acct, addr = "account:a@x.io", "addr:192.0.2.1"
	admitN(t, m, 10, acct, addr)
	// A refusal because of one key takes nothing from the others: the address has exactly
	// its 40 remaining attempts after many refused ones for the blocked account.
	for range 20 {
		if refusal(t, m, addr, acct) != 90*time.Second {
			t.Fatal("an attempt for a blocked account was admitted")
		}
	}
	for i := range 39 {
		admitN(t, m, 1, fmt.Sprintf("account:user%d@x.io", i), addr)
	}
	admitN(t, m, 1, addr, "account:fresh@x.io")
	// 50 attempts per 15 minutes refill one every 18 seconds.
	if d := refusal(t, m, "account:other@x.io", addr); d != 18*time.Second {
		t.Fatalf("address RetryAfter = %v, want 18s", d)
	}
	// The longest wait among refusing keys wins.
	if d := refusal(t, m, addr, acct); d != 90*time.Second {
		t.Fatalf("RetryAfter for both = %v, want the account's 90s", d)
	}
}

func TestSignupKeysGetTheSignupLimit(t *testing.T) {
	clock := &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	m := NewMemory(config.Throttle{Window: 15 * time.Minute, AccountFailures: 10, AddrFailures: 50, SignupAttempts: 20}, clock)
	const key = "signup:192.0.2.1"
	admitN(t, m, 20, key)
	// 20 per 15 minutes: one more every 45 seconds.
	if d := refusal(t, m, key); d != 45*time.Second {
		t.Fatalf("the 21st signup: RetryAfter = %v, want 45s", d)
	}
	// Signups and logins from one address have separate budgets.
	admitN(t, m, 50, "addr:192.0.2.1")
}

func TestAKeyNamedTwiceIsTakenOnce(t *testing.T) {
	m, _ := newThrottle()
	const acct = "account:a@x.io"
	admitN(t, m, 10, acct, acct)
	if refusal(t, m, acct) == 0 {
		t.Fatal("an 11th attempt was admitted")
	}
}

func TestOtherKeysGetTheAccountLimit(t *testing.T) {
	m, _ := newThrottle()
	admitN(t, m, 10, "something-else")
	if refusal(t, m, "something-else") == 0 {
		t.Fatal("an unprefixed key was not limited like an account")
	}
}

func TestRetryAfterRoundsUp(t *testing.T) {
	clock := &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	// 3 attempts per 10s: one token every 3.33s.
	m := NewMemory(config.Throttle{Window: 10 * time.Second, AccountFailures: 3, AddrFailures: 3}, clock)
	const acct = "account:a@x.io"
	admitN(t, m, 3, acct)
	if d := refusal(t, m, acct); d != 4*time.Second {
		t.Fatalf("RetryAfter = %v, want 3.33s rounded up to 4s", d)
	}
	clock.Advance(3300 * time.Millisecond)
	if d := refusal(t, m, acct); d != time.Second {
		t.Fatalf("with 34ms left RetryAfter = %v, want the 1s minimum", d)
	}
	clock.Advance(34 * time.Millisecond)
	if d := refusal(t, m, acct); d != 0 {
		t.Fatalf("after the refill interval still refused for %v", d)
	}
}

func TestClockGoingBackwardsDoesNotLengthenBlock(t *testing.T) {
	m, clock := newThrottle()
	const acct = "account:a@x.io"
	admitN(t, m, 10, acct)
	clock.Advance(-24 * time.Hour)
	if d := refusal(t, m, acct); d > 90*time.Second {
		t.Fatalf("after the clock stepped back RetryAfter = %v, want at most 90s", d)
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

func TestZeroConfigUsesDefaults(t *testing.T) {
	clock := &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	m := NewMemory(config.Throttle{}, clock)
	for _, c := range []struct {
		key   string
		limit int
	}{
		{"account:a@x.io", DefaultAccountFailures},
		{"addr:192.0.2.1", DefaultAddrFailures},
		{"signup:192.0.2.1", DefaultSignupAttempts},
	} {
		admitN(t, m, c.limit, c.key)
		if d := refusal(t, m, c.key); d != DefaultWindow/time.Duration(c.limit) {
			t.Fatalf("%s: RetryAfter = %v, want %v", c.key, d, DefaultWindow/time.Duration(c.limit))
		}
	}
}
