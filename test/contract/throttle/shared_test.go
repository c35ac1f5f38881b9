package throttle_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/acme/postsvc/adapters/redisx"
	"github.com/acme/postsvc/adapters/system"
	"github.com/acme/postsvc/adapters/throttle"
	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/test/fakes"
	"github.com/acme/postsvc/test/testdb"
	"github.com/acme/postsvc/test/testredis"

	throttlecontract "github.com/acme/postsvc/test/contract/throttle"
)

var (
	logins  = throttlecontract.Logins
	admitN  = throttlecontract.AdmitN
	refusal = throttlecontract.Refusal
)

const outageTimeout = 300 * time.Millisecond

func wantRefused(t *testing.T, th ports.AttemptThrottle, want time.Duration, what string, keys ...string) {
	t.Helper()
	if d := refusal(t, th, keys...); d != want {
		t.Fatalf("%s: RetryAfter = %v (0 is admitted), want %v", what, d, want)
	}
}

// TestSharedInstancesShareOneBudget: three instances, each on a client of its own, draw from
// one budget per key, one after another and all at once.
func TestSharedInstancesShareOneBudget(t *testing.T) {
	cfg := testredis.Config(t)
	clients := []rueidis.Client{testredis.Client(t, cfg), testredis.Client(t, cfg), testredis.Client(t, cfg)}
	prefix := isolated(t, clients[0])
	clock := fakes.NewClock(throttlecontract.Start)
	var instances []ports.AttemptThrottle
	for _, c := range clients {
		instances = append(instances, throttle.NewShared(c, prefix, cfg.Timeout, logins, clock, nil, strictHealth{t}))
	}

	const acct = "account:a@x.io"
	admitN(t, instances[0], 4, acct)
	admitN(t, instances[1], 3, acct)
	admitN(t, instances[2], 3, acct)
	for i, th := range instances {
		wantRefused(t, th, 15*time.Minute, fmt.Sprintf("instance %d after 10 attempts on three instances", i), acct)
	}

	// 200 attempts at once, spread over the three instances, for one account from as many
	// addresses: exactly the account's budget is admitted in total.
	admitted, refused := throttlecontract.Hammer(t, 200,
		func(i int) ports.AttemptThrottle { return instances[i%3] },
		func(i int) []string {
			return []string{"account:victim@x.io", fmt.Sprintf("addr:198.51.%d.%d", i/250, i%250)}
		})
	if admitted != 10 || refused != 190 {
		t.Fatalf("admitted %d and refused %d of 200 concurrent attempts on 3 instances; want exactly 10 admitted", admitted, refused)
	}
	// The same with one address: its budget of 50 is shared too.
	admitted, refused = throttlecontract.Hammer(t, 200,
		func(i int) ports.AttemptThrottle { return instances[i%3] },
		func(i int) []string { return []string{fmt.Sprintf("account:u%d@x.io", i), "addr:203.0.113.9"} })
	if admitted != 50 || refused != 150 {
		t.Fatalf("admitted %d and refused %d of 200 concurrent attempts from one address; want exactly 50 admitted", admitted, refused)
	}
}

// outage is an instance whose Redis goes through a proxy the test breaks, beside an instance
// that reaches the same Redis directly, both on the same keys and clock.
type outage struct {
	proxy   *testdb.Proxy
	health  *redisx.Health
	logs    *fakes.LogBuffer
	viaPxy  *throttle.Shared // the instance behind the proxy
	direct  *throttle.Shared // another instance, on Redis directly
	timeout time.Duration
}

func newOutage(t *testing.T, downAtStart bool) *outage {
	t.Helper()
	cfg := testredis.Config(t)
	opt, err := rueidis.ParseURL(cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testdb.NewProxy(t, opt.InitAddress[0])
	u, err := url.Parse(cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = proxy.Addr()
	pcfg := config.Redis{URL: u.String(), Prefix: cfg.Prefix, Timeout: outageTimeout}

	var viaProxy rueidis.Client
	if downAtStart {
		proxy.Refuse()
		if viaProxy, err = redisx.Open(pcfg, nil); err != nil {
			t.Fatalf("open with Redis down: %v", err)
		}
		t.Cleanup(viaProxy.Close)
	} else {
		viaProxy = testredis.Client(t, pcfg)
	}
	direct := testredis.Client(t, cfg)
	prefix := isolated(t, direct)
	clock := fakes.NewClock(throttlecontract.Start)
	logs := &fakes.LogBuffer{}
	health := redisx.NewHealth(slog.New(slog.NewTextHandler(logs, nil)))
	return &outage{
		proxy:   proxy,
		health:  health,
		logs:    logs,
		viaPxy:  throttle.NewShared(viaProxy, prefix, outageTimeout, logins, clock, nil, health),
		direct:  throttle.NewShared(direct, prefix, cfg.Timeout, logins, clock, nil, strictHealth{t}),
		timeout: outageTimeout,
	}
}

// timed runs f and fails the test when it takes longer than limit.
func timed(t *testing.T, what string, limit time.Duration, f func()) {
	t.Helper()
	start := time.Now()
	f()
	if d := time.Since(start); d > limit {
		t.Errorf("%s took %v, want at most %v", what, d, limit)
	}
}

// wantOneOutage checks that health saw Redis go down exactly once and logged it once.
func (o *outage) wantOneOutage(t *testing.T) {
	t.Helper()
	up, failures, outages := o.health.Stats()
	if up || failures == 0 || outages != 1 {
		t.Fatalf("health: up %t, %d failures, %d outages; want down after one outage", up, failures, outages)
	}
	if n := strings.Count(o.logs.String(), "redis unreachable"); n != 1 {
		t.Fatalf("the outage was logged %d times, want once:\n%s", n, o.logs)
	}
}

// wantRedisAgain waits until the instance behind the proxy reaches Redis again, then proves
// that it decides with Redis: attempts made only through the other instance are counted by
// it, and its own attempts are counted by the other instance.
func (o *outage) wantRedisAgain(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !o.health.Up() {
		if time.Now().After(deadline) {
			t.Fatalf("Redis not used again 15s after it came back; log:\n%s", o.logs)
		}
		// Probes (each within the timeout) on a key of their own.
		timed(t, "an Admit while Redis comes back", o.timeout+time.Second, func() {
			_ = refusal(t, o.viaPxy, "account:probe@x.io")
		})
		time.Sleep(50 * time.Millisecond)
	}
	if n := strings.Count(o.logs.String(), "redis answers again"); n != 1 {
		t.Fatalf("the recovery was logged %d times, want once:\n%s", n, o.logs)
	}
	// The proxied instance's local budget has never seen these keys: only Redis can refuse.
	admitN(t, o.direct, 10, "account:other@x.io")
	wantRefused(t, o.viaPxy, 15*time.Minute, "after Redis came back, an account emptied through the other instance", "account:other@x.io")
	admitN(t, o.viaPxy, 10, "account:third@x.io")
	wantRefused(t, o.direct, 15*time.Minute, "after Redis came back, the other instance", "account:third@x.io")
}

// skewedClock is the wall clock off by a fixed amount, as an instance's clock may be.
type skewedClock time.Duration

func (c skewedClock) Now() time.Time { return time.Now().Add(time.Duration(c)) }

// TestSharedUsesRedisTime: two instances whose clocks are 10 minutes apart share budgets as if
// they had one clock, because the logs are measured with Redis's time. With each instance's
// own time (UseClockTime), the same attempts get twice the budget: the attempts the slow
// instance recorded look older than the window to the fast one.
func TestSharedUsesRedisTime(t *testing.T) {
	cfg := testredis.Config(t)
	a, b := testredis.Client(t, cfg), testredis.Client(t, cfg)
	fast, slow := skewedClock(10*time.Minute), skewedClock(-10*time.Minute)
	const acct = "account:a@x.io"

	prefix := isolated(t, a)
	onFast := throttle.NewShared(a, prefix, cfg.Timeout, logins, fast, nil, strictHealth{t})
	onSlow := throttle.NewShared(b, prefix, cfg.Timeout, logins, slow, nil, strictHealth{t})
	admitN(t, onSlow, 5, acct)
	admitN(t, onFast, 5, acct)
	wantRefused(t, onFast, 15*time.Minute, "the fast instance", acct)
	wantRefused(t, onSlow, 15*time.Minute, "the slow instance", acct)

	prefix = isolated(t, a)
	onFast = throttle.NewShared(a, prefix, cfg.Timeout, logins, fast, nil, strictHealth{t}, throttle.UseClockTime())
	onSlow = throttle.NewShared(b, prefix, cfg.Timeout, logins, slow, nil, strictHealth{t}, throttle.UseClockTime())
	admitN(t, onSlow, 10, acct)
	admitN(t, onFast, 10, acct) // the point of Redis time: these would be refused
	wantRefused(t, onFast, 15*time.Minute, "the fast instance on its own time", acct)
}

// TestSharedFallsBackWhenRedisRefuses: while Redis refuses connections an instance still
// answers every Admit within the timeout, with nothing but nil or a ThrottledError, throttling
// alone with the full limits on a local budget that already holds its own recent attempts;
// health reports the outage once; when Redis is back the instance uses it again.
func TestSharedFallsBackWhenRedisRefuses(t *testing.T) {
	o := newOutage(t, false)
	const acct = "account:victim@x.io"
	admitN(t, o.viaPxy, 4, acct) // in Redis and in the instance's local budget
	admitN(t, o.direct, 3, acct) // in Redis only, as from another instance

	o.proxy.Refuse()
	admitted := 0
	for i := range 12 {
		timed(t, fmt.Sprintf("Admit %d with Redis refusing", i), o.timeout+200*time.Millisecond, func() {
			switch d := refusal(t, o.viaPxy, acct); d {
			case 0:
				admitted++
			case 15 * time.Minute:
			default:
				t.Fatalf("RetryAfter %v during the outage, want 15m", d)
			}
		})
	}
	if admitted != 6 {
		t.Fatalf("during the outage the instance admitted %d more attempts, want 6 (10 less its own 4)", admitted)
	}
	o.wantOneOutage(t)
	// Redis, seen from elsewhere, still holds the 7 attempts made before the outage.
	admitN(t, o.direct, 3, acct)
	wantRefused(t, o.direct, 15*time.Minute, "the other instance", acct)

	// Refund and Reset are bounded too, and apply locally.
	timed(t, "Refund with Redis refusing", o.timeout+200*time.Millisecond, func() { o.viaPxy.Refund(t.Context(), acct) })
	admitN(t, o.viaPxy, 1, acct)
	timed(t, "Reset with Redis refusing", o.timeout+200*time.Millisecond, func() { o.viaPxy.Reset(t.Context(), acct) })
	admitN(t, o.viaPxy, 10, acct)
	wantRefused(t, o.viaPxy, 15*time.Minute, "the local budget after the reset", acct)

	o.proxy.Restore()
	o.wantRedisAgain(t)
}

// TestSharedFallsBackWhenRedisStalls: while Redis stops answering without closing anything,
// attempts arriving together each wait at most about the timeout, and the calls after the
// first failure do not wait for it again.
func TestSharedFallsBackWhenRedisStalls(t *testing.T) {
	o := newOutage(t, false)
	const acct = "account:victim@x.io"
	admitN(t, o.viaPxy, 4, acct)

	o.proxy.Stall()
	var admitted, refused int
	timed(t, "20 concurrent Admits with Redis stalled", o.timeout+time.Second, func() {
		admitted, refused = throttlecontract.Hammer(t, 20,
			func(int) ports.AttemptThrottle { return o.viaPxy },
			func(int) []string { return []string{acct} })
	})
	if admitted != 6 || refused != 14 {
		t.Fatalf("with Redis stalled, admitted %d and refused %d of 20; want the 6 left in the local budget", admitted, refused)
	}
	o.wantOneOutage(t)
	// Ten more calls in a row: at most one of them (a probe) waits for the stalled Redis.
	timed(t, "10 Admits in a row with Redis stalled", o.timeout+500*time.Millisecond, func() {
		for range 10 {
			wantRefused(t, o.viaPxy, 15*time.Minute, "the local budget", acct)
		}
	})

	o.proxy.Restore()
	o.wantRedisAgain(t)
}

// TestSharedSendsWhatRedisMissedWhenItIsBack: refunds, resets and attempts admitted locally
// while Redis is down are not lost there. They were applied locally at once; when Redis
// answers again they reach it before the instance's next call, so the other instance sees the
// budgets they gave back instead of counting those attempts for the rest of the window, and
// counts the attempts it did not see.
func TestSharedSendsWhatRedisMissedWhenItIsBack(t *testing.T) {
	o := newOutage(t, false)
	const refunded, reset, untouched = "account:refunded@x.io", "account:reset@x.io", "account:untouched@x.io"
	const admitted = "account:admitted-locally@x.io"
	admitN(t, o.viaPxy, 10, refunded)
	admitN(t, o.viaPxy, 10, reset)
	admitN(t, o.viaPxy, 10, untouched)

	// Redis measures with its own clock, and the test takes seconds: the oldest attempt
	// left leaves the window a little less than 15 minutes from now.
	refusedForAWindow := func(what, key string) {
		t.Helper()
		if d := refusal(t, o.direct, key); d < 14*time.Minute || d > 15*time.Minute {
			t.Fatalf("%s: RetryAfter = %v (0 is admitted), want about 15m", what, d)
		}
	}
	o.proxy.Refuse()
	wantRefused(t, o.viaPxy, 15*time.Minute, "the local budget when Redis is first found down", refunded)
	o.wantOneOutage(t)
	for range 3 {
		o.viaPxy.Refund(t.Context(), refunded) // skipped: Redis was found down a moment ago
	}
	o.viaPxy.Reset(t.Context(), reset)
	admitN(t, o.viaPxy, 3, admitted) // by the local budget
	// Once ProbeInterval has passed, a refund tries Redis itself, and cannot connect.
	time.Sleep(throttle.ProbeInterval + 100*time.Millisecond)
	o.viaPxy.Refund(t.Context(), refunded)
	// Redis has seen none of them yet.
	refusedForAWindow("the other instance during the outage", refunded)
	refusedForAWindow("the other instance during the outage", reset)

	o.proxy.Restore()
	o.wantRedisAgain(t)
	admitN(t, o.direct, 4, refunded)
	refusedForAWindow("the other instance after the 4 refunds", refunded)
	admitN(t, o.direct, 10, reset)
	refusedForAWindow("the other instance after the reset", reset)
	refusedForAWindow("the other instance, for an account nothing was given back to", untouched)
	admitN(t, o.direct, 7, admitted)
	refusedForAWindow("the other instance after 3 attempts admitted locally and 7 by Redis", admitted)
}

// TestSharedSendsALongQueueOverSeveralCalls: 150 attempts admitted locally while Redis was
// down (more than one call sends, throttle's replayBatch of 64) all reach Redis over the
// instance's next calls, oldest first, without any of those calls failing for it.
func TestSharedSendsALongQueueOverSeveralCalls(t *testing.T) {
	o := newOutage(t, false)
	o.proxy.Refuse()
	wantRefused(t, o.viaPxy, 0, "an attempt when Redis is first found down", "account:first@x.io")
	const n = 150
	for i := range n {
		admitN(t, o.viaPxy, 1, fmt.Sprintf("account:queued%d@x.io", i))
	}
	o.proxy.Restore()
	o.wantRedisAgain(t)
	for range 3 { // with wantRedisAgain's, enough calls to send 150 in batches of 64
		admitN(t, o.viaPxy, 1, "account:another@x.io")
	}
	if up, _, outages := o.health.Stats(); !up || outages != 1 {
		t.Fatalf("health: up %t after %d outages; want up, after the one", up, outages)
	}
	for i := range n {
		key := fmt.Sprintf("account:queued%d@x.io", i)
		admitN(t, o.direct, 9, key)
		if d := refusal(t, o.direct, key); d == 0 {
			t.Fatalf("attempt %d of %d admitted while Redis was down never reached it", i+1, n)
		}
	}
}

// TestSharedStartsWithRedisDown: an instance whose Redis is down when it starts throttles
// locally, and uses Redis once it answers.
func TestSharedStartsWithRedisDown(t *testing.T) {
	o := newOutage(t, true)
	const acct = "account:a@x.io"
	timed(t, "10 Admits with Redis down from the start", 10*(o.timeout+200*time.Millisecond), func() {
		admitN(t, o.viaPxy, 10, acct)
	})
	wantRefused(t, o.viaPxy, 15*time.Minute, "the local budget", acct)
	o.wantOneOutage(t)
	o.proxy.Restore()
	o.wantRedisAgain(t)
}

// TestSharedCallerCancellationIsNotAnOutage: a caller that gives up does not stop its attempt
// (or its refund) from reaching Redis, and is not reported as Redis failing.
func TestSharedCallerCancellationIsNotAnOutage(t *testing.T) {
	cfg := testredis.Config(t)
	a, b := testredis.Client(t, cfg), testredis.Client(t, cfg)
	prefix := isolated(t, a)
	clock := fakes.NewClock(throttlecontract.Start)
	logs := &fakes.LogBuffer{}
	health := redisx.NewHealth(slog.New(slog.NewTextHandler(logs, nil)))
	th := throttle.NewShared(a, prefix, cfg.Timeout, logins, clock, nil, health)
	other := throttle.NewShared(b, prefix, cfg.Timeout, logins, clock, nil, strictHealth{t})

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	const acct = "account:a@x.io"
	for i := range 10 {
		if err := th.Admit(ctx, acct); err != nil {
			t.Fatalf("attempt %d with a cancelled context: %v", i, err)
		}
	}
	wantRefused(t, other, 15*time.Minute, "the other instance", acct)
	th.Refund(ctx, acct)
	admitN(t, other, 1, acct)
	th.Reset(ctx, acct)
	admitN(t, other, 10, acct)
	if up, failures, _ := health.Stats(); !up || failures != 0 {
		t.Fatalf("health: up %t with %d failures after cancelled calls; log:\n%s", up, failures, logs)
	}
}

// TestSharedKeepsNoKeyInClear: Redis holds no email or address, only hashes of fixed length
// under the configured prefix, each with a TTL of at most one window; and the values are
// times, nothing else.
func TestSharedKeepsNoKeyInClear(t *testing.T) {
	cfg := testredis.Config(t)
	client := testredis.Client(t, cfg)
	prefix := isolated(t, client)
	th := throttle.NewShared(client, prefix, cfg.Timeout, logins, system.NewClock(), nil, strictHealth{t})
	secrets := []string{"alice.liddell@example.com", "203.0.113.77", "2001:db8::77", "bob+tag@EXAMPLE.org"}
	admitN(t, th, 1, "account:"+secrets[0], "addr:"+secrets[1])
	admitN(t, th, 1, "signup:"+secrets[2])
	admitN(t, th, 1, secrets[3])

	keys := scan(t.Context(), t, client, prefix)
	if len(keys) != 4 {
		t.Fatalf("found %d keys under %s, want 4: %q", len(keys), prefix, keys)
	}
	shape := regexp.MustCompile("^" + regexp.QuoteMeta(prefix) + "attempts:[0-9a-f]{64}$")
	for _, key := range keys {
		if !shape.MatchString(key) {
			t.Errorf("key %q is not the prefix, attempts: and a hex SHA-256", key)
		}
		times, err := client.Do(t.Context(), client.B().Lrange().Key(key).Start(0).Stop(-1).Build()).AsStrSlice()
		if err != nil {
			t.Fatal(err)
		}
		if len(times) != 1 {
			t.Errorf("key %s holds %q, want the one attempt's time", key, times)
		}
		value := strings.Join(times, ",")
		for _, at := range times {
			if _, err := strconv.ParseInt(at, 10, 64); err != nil {
				t.Errorf("key %s holds %q, want times in microseconds", key, value)
			}
		}
		for _, s := range secrets {
			for _, part := range append(strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune("@.:+", r) }), s) {
				// Parts of up to four characters could occur in hex digits by chance.
				hashed := strings.ToLower(strings.TrimPrefix(key, prefix))
				if len(part) > 4 && (strings.Contains(hashed, strings.ToLower(part)) || strings.Contains(value, part)) {
					t.Errorf("key %s (value %q) contains %q", key, value, part)
				}
			}
		}
		ttl, err := client.Do(t.Context(), client.B().Pttl().Key(key).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= 0 || ttl > logins.Window.Milliseconds() {
			t.Errorf("key %s expires in %dms, want within the window (%v)", key, ttl, logins.Window)
		}
	}
}

// TestSharedKeysExpireWithTheirAttempts: on the real clock, a log's key expires one window
// after its newest attempt, and a refund of its last attempt deletes it, so Redis keeps no key
// that carries no attempt.
func TestSharedKeysExpireWithTheirAttempts(t *testing.T) {
	cfg := testredis.Config(t)
	client := testredis.Client(t, cfg)
	prefix := isolated(t, client)
	// 2 attempts per second.
	th := throttle.NewShared(client, prefix, cfg.Timeout, config.Throttle{Window: time.Second, AccountFailures: 2}, system.NewClock(), nil, strictHealth{t})
	const acct = "account:a@x.io"
	pttl := func() int64 {
		t.Helper()
		keys := scan(t.Context(), t, client, prefix)
		if len(keys) == 0 {
			return -2
		}
		ms, err := client.Do(t.Context(), client.B().Pttl().Key(keys[0]).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		return ms
	}
	admitN(t, th, 1, acct)
	time.Sleep(300 * time.Millisecond)
	admitN(t, th, 1, acct)
	if ms := pttl(); ms <= 800 || ms > 1000 {
		t.Fatalf("right after the second attempt the key expires in %dms, want (800ms, 1s]: a window after it", ms)
	}
	th.Refund(t.Context(), acct)
	if ms := pttl(); ms <= 0 || ms > 1000 {
		t.Fatalf("after a refund the key expires in %dms, want (0, 1s]", ms)
	}
	th.Refund(t.Context(), acct)
	if ms := pttl(); ms != -2 {
		t.Fatalf("a log whose attempts were all refunded still has a key (TTL %dms)", ms)
	}
	admitN(t, th, 2, acct)
	time.Sleep(1100 * time.Millisecond)
	if ms := pttl(); ms != -2 {
		t.Fatalf("a log whose attempts all left the window 100ms ago still has a key (TTL %dms)", ms)
	}
	admitN(t, th, 2, acct)
}
