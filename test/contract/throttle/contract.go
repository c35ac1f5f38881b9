// Package throttle is the behavioural specification of ports.AttemptThrottle, run against
// every implementation: the in-process throttle and the Redis one (through one instance, and
// through several instances sharing a server). It sees only the port, the domain's
// ThrottledError and the settings.
package throttle

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/test/contract"
	"github.com/acme/postsvc/test/fakes"
)

// Backend makes throttles of one implementation.
type Backend struct {
	// New returns a throttle with cfg's limits that reads the time from clock and shares no
	// state with any throttle New returned before.
	New func(t *testing.T, cfg config.Throttle, clock ports.Clock) ports.AttemptThrottle
}

// Tests returns the suite's groups.
func Tests() []contract.Group[Backend] {
	return []contract.Group[Backend]{
		{Name: "Budget", Tests: budgetTests},
		{Name: "Keys", Tests: keyTests},
		{Name: "RefundAndReset", Tests: refundResetTests},
		{Name: "Concurrency", Tests: concurrencyTests},
	}
}

// Logins is the configuration most tests use: 10 failures per account and 50 per address in
// 15 minutes (one back every 90 and 18 seconds), 20 signups (one back every 45 seconds).
var Logins = config.Throttle{Window: 15 * time.Minute, AccountFailures: 10, AddrFailures: 50, SignupAttempts: 20}

// Start is the fake clock's starting time.
var Start = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func newThrottle(t *testing.T, b Backend, cfg config.Throttle) (ports.AttemptThrottle, *fakes.Clock) {
	clock := fakes.NewClock(Start)
	return b.New(t, cfg, clock), clock
}

// AdmitN admits n attempts for keys and fails the test if any is refused.
func AdmitN(t *testing.T, th ports.AttemptThrottle, n int, keys ...string) {
	t.Helper()
	for i := range n {
		if err := th.Admit(t.Context(), keys...); err != nil {
			t.Fatalf("attempt %d of %d for %v refused: %v", i+1, n, keys, err)
		}
	}
}

// Refusal returns how long the throttle tells an attempt for keys to wait, or 0 when it admits
// it (which then counts). Any error but a *domain.ThrottledError fails the test, and so does a
// Retry-After that is not whole seconds, at least one.
func Refusal(t *testing.T, th ports.AttemptThrottle, keys ...string) time.Duration {
	t.Helper()
	err := th.Admit(t.Context(), keys...)
	if err == nil {
		return 0
	}
	var te *domain.ThrottledError
	if !errors.As(err, &te) {
		t.Fatalf("Admit(%v) returned %v, want nil or a *domain.ThrottledError", keys, err)
	}
	if te.RetryAfter < time.Second || te.RetryAfter%time.Second != 0 {
		t.Fatalf("RetryAfter = %v, want whole seconds, at least 1", te.RetryAfter)
	}
	return te.RetryAfter
}

func wantRefusal(t *testing.T, th ports.AttemptThrottle, want time.Duration, what string, keys ...string) {
	t.Helper()
	if d := Refusal(t, th, keys...); d != want {
		if d == 0 {
			t.Fatalf("%s: admitted, want refused with RetryAfter %v", what, want)
		}
		t.Fatalf("%s: RetryAfter = %v, want %v", what, d, want)
	}
}

var budgetTests = []contract.Test[Backend]{
	{Name: "BurstUpToTheLimitThenRetryAfter", Run: func(t *testing.T, b Backend) {
		th, _ := newThrottle(t, b, Logins)
		const acct = "account:a@x.io"
		AdmitN(t, th, 10, acct)
		// Ten attempts empty the bucket; one comes back every 15m/10 = 90s.
		wantRefusal(t, th, 90*time.Second, "the 11th attempt", acct)
	}},
	{Name: "RefillsOneAttemptPerInterval", Run: func(t *testing.T, b Backend) {
		th, clock := newThrottle(t, b, Logins)
		const acct = "account:a@x.io"
		AdmitN(t, th, 10, acct)
		clock.Advance(30 * time.Second)
		wantRefusal(t, th, 60*time.Second, "30s later", acct)
		clock.Advance(60 * time.Second)
		if d := Refusal(t, th, acct); d != 0 {
			t.Fatalf("after waiting RetryAfter, still refused for %v", d)
		}
		// The refilled token was one attempt, not a reset.
		wantRefusal(t, th, 90*time.Second, "after the refilled attempt", acct)
		// Half the window refills half the bucket.
		clock.Advance(7*time.Minute + 30*time.Second)
		AdmitN(t, th, 5, acct)
		wantRefusal(t, th, 90*time.Second, "after half a window", acct)
		// A whole window without attempts refills it completely, and no further.
		clock.Advance(time.Hour)
		AdmitN(t, th, 10, acct)
		wantRefusal(t, th, 90*time.Second, "after a quiet hour", acct)
	}},
	{Name: "RefusedAttemptsTakeNothing", Run: func(t *testing.T, b Backend) {
		th, clock := newThrottle(t, b, Logins)
		const acct = "account:victim@x.io"
		AdmitN(t, th, 10, acct)
		for range 200 {
			_ = th.Admit(t.Context(), acct)
		}
		wantRefusal(t, th, 90*time.Second, "after 200 refusals", acct)
		// Once the attacker stops, the owner may try within one interval and has the whole
		// budget back within the window.
		clock.Advance(90 * time.Second)
		AdmitN(t, th, 1, acct)
		clock.Advance(15 * time.Minute)
		AdmitN(t, th, 10, acct)
	}},
	{Name: "RetryAfterRoundsUpToWholeSeconds", Run: func(t *testing.T, b Backend) {
		// 3 attempts per 10s: one token every 3.33s.
		th, clock := newThrottle(t, b, config.Throttle{Window: 10 * time.Second, AccountFailures: 3, AddrFailures: 3})
		const acct = "account:a@x.io"
		AdmitN(t, th, 3, acct)
		wantRefusal(t, th, 4*time.Second, "3.33s to wait", acct)
		clock.Advance(3 * time.Second)
		wantRefusal(t, th, time.Second, "0.33s to wait", acct)
		clock.Advance(334 * time.Millisecond)
		if d := Refusal(t, th, acct); d != 0 {
			t.Fatalf("after the refill interval still refused for %v", d)
		}
	}},
	{Name: "ClockGoingBackwardsDoesNotLengthenABlock", Run: func(t *testing.T, b Backend) {
		th, clock := newThrottle(t, b, Logins)
		const acct = "account:a@x.io"
		AdmitN(t, th, 10, acct)
		clock.Advance(-24 * time.Hour)
		if d := Refusal(t, th, acct); d > 90*time.Second {
			t.Fatalf("after the clock stepped back RetryAfter = %v, want at most 90s", d)
		}
	}},
}

var keyTests = []contract.Test[Backend]{
	{Name: "PerPrefixLimits", Run: func(t *testing.T, b Backend) {
		th, _ := newThrottle(t, b, Logins)
		for _, c := range []struct {
			key   string
			limit int
			wait  time.Duration
		}{
			{"account:a@x.io", 10, 90 * time.Second},
			{"addr:192.0.2.1", 50, 18 * time.Second},
			{"signup:192.0.2.1", 20, 45 * time.Second},
			{"something-else", 10, 90 * time.Second}, // any other key is limited like an account
		} {
			AdmitN(t, th, c.limit, c.key)
			wantRefusal(t, th, c.wait, c.key, c.key)
		}
	}},
	{Name: "ZeroSettingsUseTheDefaults", Run: func(t *testing.T, b Backend) {
		th, _ := newThrottle(t, b, config.Throttle{})
		for _, c := range []struct {
			key   string
			limit int
		}{{"account:a@x.io", 10}, {"addr:192.0.2.1", 50}, {"signup:192.0.2.1", 20}} {
			AdmitN(t, th, c.limit, c.key)
			wantRefusal(t, th, 15*time.Minute/time.Duration(c.limit), c.key, c.key)
		}
	}},
	{Name: "AllOrNothingAcrossKeys", Run: func(t *testing.T, b Backend) {
		th, _ := newThrottle(t, b, Logins)
		const acct, addr = "account:a@x.io", "addr:192.0.2.1"
		AdmitN(t, th, 10, acct, addr)
		// Refusals because of the account take nothing from the address: it has exactly its
		// 40 remaining attempts afterwards.
		for range 20 {
			wantRefusal(t, th, 90*time.Second, "the blocked account", addr, acct)
		}
		for i := range 40 {
			AdmitN(t, th, 1, fmt.Sprintf("account:user%d@x.io", i), addr)
		}
		// Now the address blocks, and a fresh account is not charged for the refusal.
		wantRefusal(t, th, 18*time.Second, "the 51st attempt from the address", "account:fresh@x.io", addr)
		AdmitN(t, th, 10, "account:fresh@x.io")
	}},
	{Name: "TheLongestWaitWins", Run: func(t *testing.T, b Backend) {
		th, _ := newThrottle(t, b, Logins)
		const acct, addr = "account:a@x.io", "addr:192.0.2.1"
		AdmitN(t, th, 10, acct)
		AdmitN(t, th, 50, addr)
		wantRefusal(t, th, 90*time.Second, "account and address blocked", addr, acct)
		wantRefusal(t, th, 18*time.Second, "address alone", addr)
	}},
	{Name: "AKeyNamedTwiceIsTakenOnce", Run: func(t *testing.T, b Backend) {
		th, _ := newThrottle(t, b, Logins)
		const acct = "account:a@x.io"
		AdmitN(t, th, 10, acct, acct)
		wantRefusal(t, th, 90*time.Second, "the 11th attempt", acct)
	}},
	{Name: "KeysAreIndependent", Run: func(t *testing.T, b Backend) {
		th, _ := newThrottle(t, b, Logins)
		AdmitN(t, th, 10, "account:a@x.io")
		AdmitN(t, th, 10, "account:A@x.io") // keys are opaque: normalising is the caller's job
		AdmitN(t, th, 20, "signup:192.0.2.1")
		AdmitN(t, th, 50, "addr:192.0.2.1") // signups and logins from one address do not mix
		AdmitN(t, th, 0)                    // no key: nothing to take
	}},
}

var refundResetTests = []contract.Test[Backend]{
	{Name: "RefundGivesBackOneAttempt", Run: func(t *testing.T, b Backend) {
		th, _ := newThrottle(t, b, Logins)
		const acct, addr = "account:a@x.io", "addr:192.0.2.1"
		AdmitN(t, th, 10, acct, addr)
		th.Refund(t.Context(), acct, addr)
		AdmitN(t, th, 1, acct)
		wantRefusal(t, th, 90*time.Second, "after one refund and one attempt", acct)
		// The address got its attempt back too: 41 left.
		AdmitN(t, th, 41, addr)
		wantRefusal(t, th, 18*time.Second, "the address", addr)
	}},
	{Name: "RefundsNeverRaiseABudgetAboveItsLimit", Run: func(t *testing.T, b Backend) {
		th, _ := newThrottle(t, b, Logins)
		const acct = "account:a@x.io"
		AdmitN(t, th, 2, acct)
		for range 5 {
			th.Refund(t.Context(), acct)
		}
		AdmitN(t, th, 10, acct)
		wantRefusal(t, th, 90*time.Second, "after more refunds than attempts", acct)
		th.Refund(t.Context(), "account:unknown@x.io") // refunding an unknown key is harmless
		AdmitN(t, th, 10, "account:unknown@x.io")
		wantRefusal(t, th, 90*time.Second, "the unknown key", "account:unknown@x.io")
	}},
	{Name: "RefundAfterRefillDoesNotCarryOver", Run: func(t *testing.T, b Backend) {
		th, clock := newThrottle(t, b, Logins)
		const acct = "account:a@x.io"
		AdmitN(t, th, 1, acct)
		clock.Advance(15 * time.Minute)
		th.Refund(t.Context(), acct) // the bucket is already full again
		AdmitN(t, th, 10, acct)
		wantRefusal(t, th, 90*time.Second, "the 11th attempt", acct)
	}},
	{Name: "ResetRestoresTheWholeBudgetOfItsKeysOnly", Run: func(t *testing.T, b Backend) {
		th, _ := newThrottle(t, b, Logins)
		const acct, addr = "account:a@x.io", "addr:192.0.2.1"
		AdmitN(t, th, 10, acct, addr)
		th.Reset(t.Context(), acct)
		AdmitN(t, th, 10, acct)
		wantRefusal(t, th, 90*time.Second, "after the reset budget", acct)
		// The address still holds its 10 attempts.
		AdmitN(t, th, 40, addr)
		wantRefusal(t, th, 18*time.Second, "the address", addr)
		th.Reset(t.Context(), acct, addr, acct)
		AdmitN(t, th, 10, acct, addr)
		th.Reset(t.Context(), "account:unknown@x.io") // resetting an unknown key is harmless
		th.Reset(t.Context())
	}},
}

var concurrencyTests = []contract.Test[Backend]{
	// The property the port exists for: many attempts at once for one account, each from its
	// own address, admit exactly the account's budget.
	{Name: "ConcurrentAttemptsAdmitExactlyTheBudget", Run: func(t *testing.T, b Backend) {
		th, _ := newThrottle(t, b, Logins)
		admitted, refused := Hammer(t, 150, func(i int) ports.AttemptThrottle { return th },
			func(i int) []string { return []string{"account:victim@x.io", fmt.Sprintf("addr:198.51.100.%d", i)} })
		if admitted != 10 || refused != 140 {
			t.Fatalf("admitted %d and refused %d of 150 concurrent attempts; want exactly 10 admitted", admitted, refused)
		}
	}},
	{Name: "ConcurrentMixedUse", Run: func(t *testing.T, b Backend) {
		th, clock := newThrottle(t, b, Logins)
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := range 100 {
					keys := []string{fmt.Sprintf("account:u%d@x.io", i%7), fmt.Sprintf("addr:192.0.2.%d", w)}
					err := th.Admit(t.Context(), keys...)
					var te *domain.ThrottledError
					if err != nil && !errors.As(err, &te) {
						t.Error(err)
						return
					}
					if err == nil && i%3 == 0 {
						th.Refund(t.Context(), keys...)
					}
					if i%25 == 0 {
						th.Reset(t.Context(), keys[0])
						clock.Advance(time.Second)
					}
				}
			})
		}
		wg.Wait()
	}},
}

// Hammer starts n goroutines at once, the i-th calling Admit on instance(i) with keys(i), and
// counts the admitted and the throttled attempts; any other error fails the test.
func Hammer(t *testing.T, n int, instance func(i int) ports.AttemptThrottle, keys func(i int) []string) (admitted, refused int) {
	t.Helper()
	var ok, no atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			err := instance(i).Admit(t.Context(), keys(i)...)
			var te *domain.ThrottledError
			switch {
			case err == nil:
				ok.Add(1)
			case errors.As(err, &te):
				no.Add(1)
			default:
				t.Errorf("attempt %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	return int(ok.Load()), int(no.Load())
}
