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

// Logins is the configuration most tests use: 10 failures per account and 50 per address, 20
// signups per address, all per 15 minutes.
var Logins = config.Throttle{Window: 15 * time.Minute, AccountFailures: 10, AddrFailures: 50, SignupAttempts: 20}

// window is Logins' window: a burst that fills a budget blocks its key for that long.
const window = 15 * time.Minute

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
		th, clock := newThrottle(t, b, Logins)
		const acct = "account:a@x.io"
		AdmitN(t, th, 10, acct)
		// Ten attempts at once fill the window; the first leaves it 15 minutes later.
		wantRefusal(t, th, window, "the 11th attempt", acct)
		clock.Advance(window - time.Second)
		wantRefusal(t, th, time.Second, "a second before the window ends", acct)
		clock.Advance(time.Second)
		AdmitN(t, th, 10, acct)
		wantRefusal(t, th, window, "after the second burst", acct)
	}},
	{Name: "RetryAfterIsUntilTheOldestAttemptLeavesTheWindow", Run: func(t *testing.T, b Backend) {
		th, clock := newThrottle(t, b, Logins)
		const acct = "account:a@x.io"
		AdmitN(t, th, 4, acct) // at 0
		clock.Advance(5 * time.Minute)
		AdmitN(t, th, 6, acct) // at 5 min
		clock.Advance(time.Minute)
		wantRefusal(t, th, 9*time.Minute, "at 6 min: the first four leave at 15 min", acct)
		clock.Advance(9 * time.Minute)
		// The four from 0 have left; the six from 5 min are still in the window.
		AdmitN(t, th, 4, acct)
		wantRefusal(t, th, 5*time.Minute, "at 15 min, four attempts later", acct)
		clock.Advance(5 * time.Minute)
		AdmitN(t, th, 6, acct)
		wantRefusal(t, th, 10*time.Minute, "at 20 min", acct)
	}},
	{Name: "NeverMoreThanTheLimitInAnyWindow", Run: func(t *testing.T, b Backend) {
		// A client that retries a signup every 10 seconds for an hour: no span of 15 minutes
		// holds more than 20 admitted signups, and it is not starved either (it gets its 20 in
		// each of the four windows of the hour).
		th, clock := newThrottle(t, b, Logins)
		const key = "signup:192.0.2.1"
		var admitted []time.Time
		for range 360 {
			if Refusal(t, th, key) == 0 {
				admitted = append(admitted, clock.Now())
			}
			clock.Advance(10 * time.Second)
		}
		for i, at := range admitted {
			in := 0
			for _, later := range admitted[i:] {
				if later.Sub(at) < window {
					in++
				}
			}
			if in > 20 {
				t.Fatalf("%d signups admitted in the 15 minutes from %s, limit 20", in, at.Sub(Start))
			}
		}
		if len(admitted) != 80 {
			t.Fatalf("%d signups admitted in an hour of retries every 10s, want 80 (20 per window)", len(admitted))
		}
	}},
	{Name: "RefusedAttemptsTakeNothing", Run: func(t *testing.T, b Backend) {
		th, clock := newThrottle(t, b, Logins)
		const acct = "account:victim@x.io"
		AdmitN(t, th, 10, acct)
		for range 200 {
			clock.Advance(time.Second)
			_ = th.Admit(t.Context(), acct)
		}
		// Refusals neither extend the block nor count: once the window of the ten admitted
		// attempts has passed, the whole budget is back.
		wantRefusal(t, th, window-200*time.Second, "after 200 refusals", acct)
		clock.Advance(window - 200*time.Second)
		AdmitN(t, th, 10, acct)
	}},
	{Name: "RetryAfterRoundsUpToWholeSeconds", Run: func(t *testing.T, b Backend) {
		// 3 attempts per 10s.
		th, clock := newThrottle(t, b, config.Throttle{Window: 10 * time.Second, AccountFailures: 3, AddrFailures: 3})
		const acct = "account:a@x.io"
		AdmitN(t, th, 1, acct)
		clock.Advance(333 * time.Millisecond)
		AdmitN(t, th, 2, acct)
		wantRefusal(t, th, 10*time.Second, "9.667s to wait", acct)
		clock.Advance(9 * time.Second)
		wantRefusal(t, th, time.Second, "0.667s to wait", acct)
		clock.Advance(667 * time.Millisecond)
		if d := Refusal(t, th, acct); d != 0 {
			t.Fatalf("once the first attempt left the window, still refused for %v", d)
		}
	}},
	{Name: "ClockGoingBackwardsDoesNotLengthenABlock", Run: func(t *testing.T, b Backend) {
		th, clock := newThrottle(t, b, Logins)
		const acct = "account:a@x.io"
		AdmitN(t, th, 10, acct)
		clock.Advance(-24 * time.Hour)
		if d := Refusal(t, th, acct); d == 0 || d > window {
			t.Fatalf("after the clock stepped back RetryAfter = %v, want refused for at most the %v window", d, window)
		}
		clock.Advance(window)
		AdmitN(t, th, 10, acct)
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
			{"account:a@x.io", 10, window},
			{"addr:192.0.2.1", 50, window},
			{"signup:192.0.2.1", 20, window},
			{"something-else", 10, window}, // any other key is limited like an account
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
			wantRefusal(t, th, 15*time.Minute, c.key, c.key)
		}
	}},
	{Name: "AllOrNothingAcrossKeys", Run: func(t *testing.T, b Backend) {
		th, _ := newThrottle(t, b, Logins)
		const acct, addr = "account:a@x.io", "addr:192.0.2.1"
		AdmitN(t, th, 10, acct, addr)
		// Refusals because of the account take nothing from the address: it has exactly its
		// 40 remaining attempts afterwards.
		for range 20 {
			wantRefusal(t, th, window, "the blocked account", addr, acct)
		}
		for i := range 40 {
			AdmitN(t, th, 1, fmt.Sprintf("account:user%d@x.io", i), addr)
		}
		// Now the address blocks, and a fresh account is not charged for the refusal.
		wantRefusal(t, th, window, "the 51st attempt from the address", "account:fresh@x.io", addr)
		AdmitN(t, th, 10, "account:fresh@x.io")
	}},
	{Name: "TheLongestWaitWins", Run: func(t *testing.T, b Backend) {
		th, clock := newThrottle(t, b, Logins)
		const acct, addr = "account:a@x.io", "addr:192.0.2.1"
		AdmitN(t, th, 10, acct)
		clock.Advance(5 * time.Minute)
		AdmitN(t, th, 50, addr)
		wantRefusal(t, th, window, "account and address blocked", addr, acct)
		wantRefusal(t, th, 10*time.Minute, "account alone", acct)
	}},
	{Name: "AKeyNamedTwiceIsTakenOnce", Run: func(t *testing.T, b Backend) {
		th, _ := newThrottle(t, b, Logins)
		const acct = "account:a@x.io"
		AdmitN(t, th, 10, acct, acct)
		wantRefusal(t, th, window, "the 11th attempt", acct)
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
		wantRefusal(t, th, window, "after one refund and one attempt", acct)
		// The address got its attempt back too: 41 left.
		AdmitN(t, th, 41, addr)
		wantRefusal(t, th, window, "the address", addr)
	}},
	{Name: "RefundsNeverRaiseABudgetAboveItsLimit", Run: func(t *testing.T, b Backend) {
		th, _ := newThrottle(t, b, Logins)
		const acct = "account:a@x.io"
		AdmitN(t, th, 2, acct)
		for range 5 {
			th.Refund(t.Context(), acct)
		}
		AdmitN(t, th, 10, acct)
		wantRefusal(t, th, window, "after more refunds than attempts", acct)
		th.Refund(t.Context(), "account:unknown@x.io") // refunding an unknown key is harmless
		AdmitN(t, th, 10, "account:unknown@x.io")
		wantRefusal(t, th, window, "the unknown key", "account:unknown@x.io")
	}},
	{Name: "RefundAfterTheWindowDoesNotCarryOver", Run: func(t *testing.T, b Backend) {
		th, clock := newThrottle(t, b, Logins)
		const acct = "account:a@x.io"
		AdmitN(t, th, 1, acct)
		clock.Advance(15 * time.Minute)
		th.Refund(t.Context(), acct) // its one attempt has already left the window
		AdmitN(t, th, 10, acct)
		wantRefusal(t, th, window, "the 11th attempt", acct)
	}},
	{Name: "ResetRestoresTheWholeBudgetOfItsKeysOnly", Run: func(t *testing.T, b Backend) {
		th, _ := newThrottle(t, b, Logins)
		const acct, addr = "account:a@x.io", "addr:192.0.2.1"
		AdmitN(t, th, 10, acct, addr)
		th.Reset(t.Context(), acct)
		AdmitN(t, th, 10, acct)
		wantRefusal(t, th, window, "after the reset budget", acct)
		// The address still holds its 10 attempts.
		AdmitN(t, th, 40, addr)
		wantRefusal(t, th, window, "the address", addr)
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
