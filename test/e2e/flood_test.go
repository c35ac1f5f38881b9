package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The flood tests speak for many client addresses from one machine: the server trusts the
// loopback proxy, and each request names its client in X-Forwarded-For.
const trustLoopbackProxy = "APP_HTTP_TRUSTED_PROXIES=127.0.0.1/32"

// floodEachBackend is forEachBackend for a server started with extra settings. Unlike
// forEachBackendWith it keeps the service's real argon2id cost: these tests are about how
// the hashing time is shared.
func floodEachBackend(t *testing.T, fn func(t *testing.T, s *server), extra ...string) {
	t.Helper()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			fn(t, startServer(t, b.env(t), extra...))
		})
	}
}

// floodClient sends many requests at once over kept-alive connections (the default client
// keeps only two idle connections per host, and a flood would use up the loopback ports).
var floodClient = &http.Client{
	Timeout:   60 * time.Second,
	Transport: &http.Transport{MaxIdleConns: 400, MaxIdleConnsPerHost: 400, IdleConnTimeout: 30 * time.Second},
}

// answer is one reply to a flood request, with how long it took.
type answer struct {
	response
	took time.Duration
	code string // the problem code, for problem documents
	err  error  // a transport error
}

// post sends a JSON POST as client addr. It is safe from any goroutine: it reports transport
// errors in the answer instead of failing the test.
func (s *server) post(path, addr string, body any) answer {
	raw, err := json.Marshal(body)
	if err != nil {
		return answer{err: err}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+path, bytes.NewReader(raw))
	if err != nil {
		return answer{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", addr)
	start := time.Now()
	resp, err := floodClient.Do(req)
	if err != nil {
		return answer{err: err, took: time.Since(start)}
	}
	data, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	a := answer{response: response{Status: resp.StatusCode, Header: resp.Header, Body: data}, took: time.Since(start), err: err}
	var problem struct {
		Code string `json:"code"`
	}
	if resp.StatusCode >= 400 && json.Unmarshal(data, &problem) == nil {
		a.code = problem.Code
	}
	return a
}

// tally counts answers by status and code, and validates the first answer of each kind
// against the OpenAPI document (every one would cost the server's CPU in the test process).
type tally struct {
	mu     sync.Mutex
	s      *server
	counts map[string]int
	shed   []time.Duration // how long each 503 overloaded took
	errs   []error
}

func newTally(s *server) *tally { return &tally{s: s, counts: map[string]int{}} }

func (t *tally) add(path string, a answer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if a.err != nil {
		t.errs = append(t.errs, a.err)
		return
	}
	kind := strconv.Itoa(a.Status)
	if a.code != "" {
		kind += " " + a.code
	}
	t.counts[kind]++
	if t.counts[kind] == 1 {
		req, _ := http.NewRequest(http.MethodPost, t.s.base+path, nil)
		responseHook(t.s, req, a.response)
	}
	switch {
	case a.Status == http.StatusServiceUnavailable && a.code == "overloaded":
		t.shed = append(t.shed, a.took)
		if a.Header.Get("Retry-After") == "" {
			t.errs = append(t.errs, fmt.Errorf("503 overloaded without Retry-After"))
		}
	case a.Status == http.StatusTooManyRequests:
		if n, err := strconv.Atoi(a.Header.Get("Retry-After")); err != nil || n < 1 {
			t.errs = append(t.errs, fmt.Errorf("429 with Retry-After %q", a.Header.Get("Retry-After")))
		}
	}
}

func (t *tally) count(kind string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counts[kind]
}

// check fails the test on transport errors and on any answer not among allowed kinds.
func (t *tally) check(tt *testing.T, allowed ...string) {
	tt.Helper()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, err := range t.errs {
		tt.Errorf("flood request: %v", err)
	}
	bad := false
	for kind, n := range t.counts {
		if !slices.Contains(allowed, kind) {
			tt.Errorf("%d answers %q; only %q are allowed", n, kind, allowed)
			bad = true
		}
	}
	if bad {
		// The server logs why at warn level or above, which is all it logs here.
		tt.Logf("the server's log:\n%s", t.s.stderr.String())
	}
}

// percentile of sorted durations, nearest rank.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// TestFloodOfWrongPasswordsForOneAccount sends 150 wrong passwords for one account at once,
// each from an address of its own so that only the account's limit (10 by default) applies:
// no more than 10 passwords are tested (401), and every other attempt is refused without
// being tested, with 429 when the throttle refused it, or with 503 overloaded when the
// hasher had no place for it (the hasher is asked first, so that shedding costs no round trip
// to a shared throttle; a shed attempt takes nothing from the budget). Wrong passwords sent
// one at a time afterwards are tested until exactly 10 have been, then refused with 429, the
// account's owner included.
func TestFloodOfWrongPasswordsForOneAccount(t *testing.T) {
	floodEachBackend(t, func(t *testing.T, s *server) {
		victim := s.signup(uniqueEmail("victim"))
		const attempts, limit = 150, 10
		got := newTally(s)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range attempts {
			wg.Go(func() {
				<-start
				addr := fmt.Sprintf("198.51.%d.%d", 100+i/250, 1+i%250)
				got.add("/api/v1/auth/login", s.post("/api/v1/auth/login", addr,
					map[string]any{"email": victim.Email, "password": fmt.Sprintf("guess number %d", i)}))
			})
		}
		close(start)
		wg.Wait()
		got.check(t, "401 invalid_credentials", "429 too_many_attempts", "503 overloaded")
		tested, refused, shed := got.count("401 invalid_credentials"), got.count("429 too_many_attempts"), got.count("503 overloaded")
		t.Logf("%d concurrent wrong passwords: %d tested (401), %d refused (429), %d shed (503)", attempts, tested, refused, shed)
		if tested > limit || tested < 1 || tested+refused+shed != attempts {
			t.Fatalf("%d answered 401, %d 429 and %d 503 of %d; at most the account's limit of %d may be tested",
				tested, refused, shed, attempts, limit)
		}
		// One at a time, from yet other addresses: exactly the rest of the budget is tested.
		for i := 0; ; i++ {
			r := s.post("/api/v1/auth/login", fmt.Sprintf("198.18.0.%d", 1+i), map[string]any{"email": victim.Email, "password": "one more guess"})
			if r.err != nil || r.Status != http.StatusUnauthorized && r.Status != http.StatusTooManyRequests {
				t.Fatalf("wrong password %d after the flood: %d %s %v", i+1, r.Status, truncate(r.Body), r.err)
			}
			if r.Status == http.StatusTooManyRequests {
				break
			}
			if tested++; tested > limit {
				t.Fatalf("%d wrong passwords were tested; the account's limit is %d", tested, limit)
			}
		}
		if tested != limit {
			t.Fatalf("refused with 429 after %d tested wrong passwords, want the limit of %d", tested, limit)
		}
		// The account stays protected: its owner, from yet another address, is refused too.
		r := s.post("/api/v1/auth/login", "203.0.113.200", map[string]any{"email": victim.Email, "password": victim.Password})
		if r.err != nil || r.Status != http.StatusTooManyRequests {
			t.Fatalf("login after the flood: %d %v, want 429", r.Status, r.err)
		}
	}, trustLoopbackProxy)
}

// TestFloodOfSignupsFromOneAddress sends 150 signups at once from one address: no more than
// the 20 per address a window allows are created, the rest are refused with 429 or shed with
// 503 overloaded when the hasher has no place for them (which does not use up the budget).
// Once 20 exist, another 150 at once create nothing: those the hasher has a place for are
// refused with 429, the others shed, and one more afterwards gets 429 with Retry-After,
// while another address can still sign up. The window is a day, so that no signup comes back
// while the test runs.
func TestFloodOfSignupsFromOneAddress(t *testing.T) {
	floodEachBackend(t, func(t *testing.T, s *server) {
		const flood, limit, addr = 150, 20, "198.51.100.66"
		got := newTally(s)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range flood {
			wg.Go(func() {
				<-start
				got.add("/api/v1/auth/signup", s.post("/api/v1/auth/signup", addr,
					map[string]any{"email": uniqueEmail(fmt.Sprintf("flood%d", i)), "password": "correct horse battery"}))
			})
		}
		close(start)
		wg.Wait()
		got.check(t, "201", "429 too_many_attempts", "503 overloaded")
		created := got.count("201")
		t.Logf("%d concurrent signups from one address: %d created, %d refused (429), %d shed (503 overloaded)",
			flood, created, got.count("429 too_many_attempts"), got.count("503 overloaded"))
		if created < 1 || created > limit {
			t.Fatalf("%d signups created from one address, want 1 to %d", created, limit)
		}
		// Shed signups gave their attempt back: one at a time, the address gets exactly the
		// rest of its 20, then nothing but 429, however many arrive at once.
		for created < limit {
			r := s.post("/api/v1/auth/signup", addr, map[string]any{"email": uniqueEmail("more"), "password": "correct horse battery"})
			if r.err != nil || r.Status != http.StatusCreated {
				t.Fatalf("signup %d of %d from the address: %d %s %v", created+1, limit, r.Status, truncate(r.Body), r.err)
			}
			created++
		}
		again := newTally(s)
		for range flood {
			wg.Go(func() {
				again.add("/api/v1/auth/signup", s.post("/api/v1/auth/signup", addr,
					map[string]any{"email": uniqueEmail("over"), "password": "correct horse battery"}))
			})
		}
		wg.Wait()
		again.check(t, "429 too_many_attempts", "503 overloaded")
		t.Logf("%d concurrent signups beyond the limit: %d refused (429), %d shed (503 overloaded)",
			flood, again.count("429 too_many_attempts"), again.count("503 overloaded"))
		if again.count("429 too_many_attempts") == 0 {
			t.Fatalf("none of %d signups beyond the limit was refused with 429", flood)
		}
		if r := s.post("/api/v1/auth/signup", addr, map[string]any{"email": uniqueEmail("over"), "password": "correct horse battery"}); r.err != nil || r.Status != http.StatusTooManyRequests {
			t.Fatalf("one signup beyond the limit after the flood: %d %s %v, want 429", r.Status, truncate(r.Body), r.err)
		}
		other := s.post("/api/v1/auth/signup", "203.0.113.9", map[string]any{"email": uniqueEmail("other"), "password": "correct horse battery"})
		if other.err != nil || other.Status != http.StatusCreated {
			t.Fatalf("another address's signup: %d %s %v", other.Status, truncate(other.Body), other.err)
		}
	}, trustLoopbackProxy, "APP_THROTTLE_WINDOW=24h")
}

// TestFloodDoesNotStarveOtherClients: one address floods the hasher with signups and logins
// from 150 connections at once (its signup and failure limits lifted, so every request asks
// for a hash), while another address logs in with the right password, one login after
// another. The other client's logins all succeed, never 503, in about the time of a hash
// or two; the flood's surplus is shed at once with 503 overloaded and Retry-After.
func TestFloodDoesNotStarveOtherClients(t *testing.T) {
	if raceEnabled {
		// Its bounds are times on two saturated cores. A server built with the race detector
		// is several times slower, and with Redis each shed attempt also makes the throttle's
		// two round trips: the bounds then measure the detector, and the test failed on code
		// that met them without it. .ci/run runs this test again without the race detector,
		// right after the suite, so it never goes unchecked.
		t.Skip("timing bounds: run without -race (.ci/run does: go test -run TestFloodDoesNotStarveOtherClients ./test/e2e/)")
	}
	floodEachBackend(t, func(t *testing.T, s *server) {
		const flooder, legit = "198.51.100.99", "203.0.113.10"
		owner := s.signup(uniqueEmail("owner"))
		login := func() answer {
			return s.post("/api/v1/auth/login", legit, map[string]any{"email": owner.Email, "password": owner.Password})
		}
		var quiet []time.Duration
		for range 3 {
			r := login()
			if r.err != nil || r.Status != http.StatusOK {
				t.Fatalf("login without a flood: %d %s %v", r.Status, truncate(r.Body), r.err)
			}
			quiet = append(quiet, r.took)
		}

		// Each flood connection sends its next request as soon as it has an answer, pausing
		// half a second after a shed one. That keeps every hashing slot and the flooder's
		// whole share of the queue taken at all times (a freed place is refilled within
		// milliseconds by one of 150 connections). Without the pause the test would measure
		// how many refusals per second a race-instrumented server can write on two cores it
		// shares with this test, which is a question about request rates, not about the
		// hasher; the load runner's flood scenario (test/load/flood.go) measures a flood
		// without any pause on an uninstrumented build.
		got := newTally(s)
		var stop atomic.Bool
		var wg sync.WaitGroup
		for i := range 150 {
			wg.Go(func() {
				for n := 0; !stop.Load(); n++ {
					path, body := "/api/v1/auth/signup", map[string]any{"email": uniqueEmail("flood"), "password": "correct horse battery"}
					if (i+n)%2 == 1 {
						path, body = "/api/v1/auth/login", map[string]any{"email": uniqueEmail("nobody"), "password": "wrong password"}
					}
					a := s.post(path, flooder, body)
					got.add(path, a)
					if a.code == "overloaded" {
						time.Sleep(500 * time.Millisecond)
					}
				}
			})
		}
		// Let the flood fill every slot and the queue before measuring.
		deadline := time.Now().Add(30 * time.Second)
		for got.count("503 overloaded") == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		var during []time.Duration
		var failed []string
		for range 5 {
			r := login()
			during = append(during, r.took)
			if r.err != nil || r.Status != http.StatusOK {
				failed = append(failed, fmt.Sprintf("%d %s %v after %v", r.Status, truncate(r.Body), r.err, r.took))
			}
		}
		stop.Store(true)
		wg.Wait()

		got.check(t, "201", "401 invalid_credentials", "503 overloaded")
		if t.Failed() {
			t.Logf("server log:\n%s", s.stderr.String())
		}
		if len(failed) > 0 {
			t.Fatalf("the other client's logins during the flood failed: %q", failed)
		}
		slices.Sort(quiet)
		slices.Sort(during)
		slices.Sort(got.shed)
		t.Logf("other client's login: quiet max %v; during the flood %v (max %v)", quiet[len(quiet)-1], during, during[len(during)-1])
		t.Logf("flood: %d created, %d failed logins, %d shed; shed answered in p50 %v, p99 %v, max %v",
			got.count("201"), got.count("401 invalid_credentials"), len(got.shed),
			percentile(got.shed, 0.5), percentile(got.shed, 0.99), percentile(got.shed, 1))
		if len(got.shed) == 0 {
			t.Fatal("the flood was never shed")
		}
		// The server's own clock, without this test's share of the two cores: how long its
		// handlers took to answer 503 overloaded. A check's place in the hasher is reserved
		// before the throttle (with Redis, two round trips) and the database are asked, so a
		// shed answer measures the decision itself, for logins as for signups. CI saw only
		// 108 of 141 signups within the bound when every shed signup made the throttle's
		// round trips first, and 62 of 80 when a look that reserved nothing let whole bursts
		// through to be shed after them (reproduced here with one busy loop beside the test:
		// 82 of 144, against 144 of 144 with reservations, and with two busy loops).
		bucket, bound := "0.1", "100 ms"
		metrics := string(s.do("GET", "/metrics", "", nil).Body)
		for _, route := range []string{"/api/v1/auth/signup", "/api/v1/auth/login"} {
			fast, all := shedWithin(t, metrics, route, bucket)
			t.Logf("%s: %d of %d answers 503 within %s (server side)", route, fast, all, bound)
			if all == 0 || fast*10 < all*9 {
				t.Errorf("only %d of %d shed answers of %s came within %s on the server", fast, all, route, bound)
			}
		}
		// About one hash to get a slot and one to run, both slower while the flood keeps every
		// core busy (four hashes share two cores here, and the race detector slows each);
		// in any case well below the request timeout (5 s) that a queue behind the flood
		// reached before.
		if worst := during[len(during)-1]; worst > 4*time.Second {
			t.Fatalf("the other client's slowest login took %v during the flood (%v without)", worst, quiet[len(quiet)-1])
		}
		// Shedding decides at once (the server-side check above measures that). Seen from
		// this client, which shares the two saturated cores with the server and the flood's
		// 150 connections, the typical refusal still comes back far sooner than the request
		// timeout a queue behind the flood used to reach (5 s). The client's median was once
		// compared with one quiet login (about 30 ms), but on this machine class it measures
		// the client's own scheduling: 32 to 175 ms here for code that met the server-side
		// bound, the same before and after the changes of issue 13.
		if p50 := percentile(got.shed, 0.5); p50 > 500*time.Millisecond {
			t.Fatalf("503 overloaded took %v at the median seen from the client (a quiet login: %v)", p50, quiet[0])
		}
	}, trustLoopbackProxy, "APP_THROTTLE_SIGNUP_ATTEMPTS=1000000", "APP_THROTTLE_ADDR_FAILURES=1000000")
}

// shedWithin reads, from a /metrics exposition, how many 503 answers of route the server's
// handlers gave within le seconds (a histogram bucket bound) and how many in all.
func shedWithin(t *testing.T, metrics, route, le string) (within, all int) {
	t.Helper()
	series := `postsvc_http_request_duration_seconds_bucket{method="POST",route="` + route + `",status="503",le="`
	for line := range strings.SplitSeq(metrics, "\n") {
		rest, ok := strings.CutPrefix(line, series)
		if !ok {
			continue
		}
		bound, value, _ := strings.Cut(rest, `"} `)
		n, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		switch bound {
		case le:
			within = int(n)
		case "+Inf":
			all = int(n)
		}
	}
	return within, all
}
