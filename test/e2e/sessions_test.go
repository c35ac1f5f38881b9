package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// expectUnauthenticated checks that an access token no longer works.
func expectUnauthenticated(t *testing.T, s *server, token, why string) {
	t.Helper()
	r := s.do("GET", "/api/v1/users/me", token, nil)
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("%s: access token still works (status %d): %s", why, r.Status, truncate(r.Body))
	}
	expectProblem(t, r, http.StatusUnauthorized, "unauthenticated")
}

// expectRefreshRefused checks that a refresh token no longer works.
func expectRefreshRefused(t *testing.T, s *server, token, why string) {
	t.Helper()
	r := s.refreshWith(token)
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("%s: refresh token still works (status %d): %s", why, r.Status, truncate(r.Body))
	}
	expectProblem(t, r, http.StatusUnauthorized, "invalid_refresh_token")
}

func TestRefreshRotatesAndReuseRevokesTheSession(t *testing.T) {
	forEachBackendWith(t, nil, func(t *testing.T, s *server) {
		a := s.signup(uniqueEmail("rot"))
		other := s.loginAs(a.Email, a.Password) // a second login of the same user

		r1 := s.refreshWith(a.Refresh)
		expect(t, r1, http.StatusOK)
		if cc := r1.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
			t.Errorf("session response Cache-Control %q, want no-store", cc)
		}
		m := r1.JSON(t)
		if m["token_type"] != "Bearer" || m["expires_in"] == nil {
			t.Fatalf("refresh answer is not a session: %s", r1.Body)
		}
		gen1 := sessionAccount(t, r1, a.Email, a.Password)
		if gen1.Refresh == a.Refresh || gen1.ID != a.ID {
			t.Fatalf("refresh did not rotate the refresh token or changed the user: %+v", gen1)
		}
		expect(t, s.do("GET", "/api/v1/users/me", gen1.Access, nil), http.StatusOK)

		// The new refresh token rotates again: a chain of descendants of one login.
		r2 := s.refreshWith(gen1.Refresh)
		expect(t, r2, http.StatusOK)
		gen2 := sessionAccount(t, r2, a.Email, a.Password)
		if gen2.Refresh == gen1.Refresh {
			t.Fatal("second refresh did not rotate")
		}
		expect(t, s.do("GET", "/api/v1/users/me", gen2.Access, nil), http.StatusOK)

		// Presenting a retired token is refused, and it revokes everything of that login.
		expectRefreshRefused(t, s, a.Refresh, "retired refresh token")
		expectRefreshRefused(t, s, gen2.Refresh, "newest refresh token after reuse")
		expectRefreshRefused(t, s, gen1.Refresh, "middle refresh token after reuse")
		for name, tok := range map[string]string{"first": a.Access, "second": gen1.Access, "newest": gen2.Access} {
			expectUnauthenticated(t, s, tok, name+" access token after reuse")
		}
		expectProblem(t, s.do("GET", "/api/v1/posts", gen2.Access, nil), http.StatusUnauthorized, "unauthenticated")

		// Another login of the same user is another session and keeps working.
		expect(t, s.do("GET", "/api/v1/users/me", other.Access, nil), http.StatusOK)
		expect(t, s.refreshWith(other.Refresh), http.StatusOK)
	})
}

func TestRefreshRefusesMalformedTokensAndBodies(t *testing.T) {
	forEachBackendWith(t, nil, func(t *testing.T, s *server) {
		a := s.signup(uniqueEmail("badref"))
		secret := strings.Repeat("A", 43)
		// The session id is no secret (it is the "sid" of every access token): tokens that
		// name the session without carrying its family must not revoke it.
		sid, rest, _ := strings.Cut(a.Refresh, ".")
		for name, tok := range map[string]string{
			"forged with the session id":            sid + "." + strings.Repeat("F", 22) + "." + secret,
			"forged in the family-less form":        sid + "." + secret,
			"the session id with a trailing space":  sid + " ." + rest,
			"the session id with a trailing tab":    sid + "\t." + rest,
			"the session id upper-cased":            strings.ToUpper(sid) + "." + rest,
			"the family with its last byte changed": a.Refresh[:len(sid)+22] + other(a.Refresh[len(sid)+22]) + a.Refresh[len(sid)+23:],
			"empty":                                 "",
			"garbage":                               "not-a-refresh-token",
			"only a dot":                            ".",
			"short secret":                          "abc.def",
			"unknown session":                       "0000000000000000000000000." + secret,
			"overlong session id":                   strings.Repeat("a", 65) + "." + secret,
			"extra byte":                            a.Refresh + "x",
			"access token":                          a.Access,
			"whitespace around":                     " " + a.Refresh + " ",
			"sql in the session id":                 "' OR '1'='1." + secret,
		} {
			r := s.refreshWith(tok)
			if r.Status != http.StatusUnauthorized {
				t.Errorf("%s: status %d, want 401: %s", name, r.Status, truncate(r.Body))
				continue
			}
			expectProblem(t, r, http.StatusUnauthorized, "invalid_refresh_token")
		}

		// A missing field is an absent token: the endpoint's one refusal, 401.
		expectProblem(t, s.do("POST", "/api/v1/auth/refresh", "", map[string]any{}), http.StatusUnauthorized, "invalid_refresh_token")
		// Bodies that are not the documented JSON object are malformed requests.
		for name, raw := range map[string]string{
			"wrong type":     `{"refresh_token": 42}`,
			"null object":    `null`,
			"malformed json": `{"refresh_token": `,
			"empty body":     ``,
		} {
			r := s.do("POST", "/api/v1/auth/refresh", "", raw)
			if r.Status != http.StatusBadRequest {
				t.Errorf("%s: status %d, want 400: %s", name, r.Status, truncate(r.Body))
				continue
			}
			expectProblem(t, r, http.StatusBadRequest, "malformed_request")
		}
		// None of the refusals above touched the real session.
		expect(t, s.do("GET", "/api/v1/users/me", a.Access, nil), http.StatusOK)
		expect(t, s.refreshWith(a.Refresh), http.StatusOK)
	})
}

func TestLogoutRevokesTheSessionAtOnce(t *testing.T) {
	forEachBackendWith(t, nil, func(t *testing.T, s *server) {
		a := s.signup(uniqueEmail("bye"))
		b := s.loginAs(a.Email, a.Password)
		expect(t, s.do("GET", "/api/v1/users/me", a.Access, nil), http.StatusOK)

		// Without a body: the caller's session ends, on the very next request.
		r := s.do("POST", "/api/v1/auth/logout", a.Access, nil)
		expect(t, r, http.StatusNoContent)
		if len(r.Body) != 0 {
			t.Errorf("204 with a body: %q", r.Body)
		}
		expectUnauthenticated(t, s, a.Access, "access token after logout")
		expectProblem(t, s.do("GET", "/api/v1/posts", a.Access, nil), http.StatusUnauthorized, "unauthenticated")
		expectRefreshRefused(t, s, a.Refresh, "refresh token after logout")
		expectProblem(t, s.do("POST", "/api/v1/auth/logout", a.Access, nil), http.StatusUnauthorized, "unauthenticated")

		// The user's other session is untouched.
		expect(t, s.do("GET", "/api/v1/users/me", b.Access, nil), http.StatusOK)
		br := s.refreshWith(b.Refresh)
		expect(t, br, http.StatusOK)
		b = sessionAccount(t, br, b.Email, b.Password)

		// With the session's own refresh token in the body.
		expect(t, s.do("POST", "/api/v1/auth/logout", b.Access, map[string]any{"refresh_token": b.Refresh}), http.StatusNoContent)
		expectUnauthenticated(t, s, b.Access, "access token after logout with its refresh token")
		expectRefreshRefused(t, s, b.Refresh, "refresh token after logout with it")

		// With the refresh token of another of the caller's sessions: both end.
		c := s.loginAs(a.Email, a.Password)
		d := s.loginAs(a.Email, a.Password)
		e := s.loginAs(a.Email, a.Password)
		expect(t, s.do("POST", "/api/v1/auth/logout", c.Access, map[string]any{"refresh_token": d.Refresh}), http.StatusNoContent)
		expectUnauthenticated(t, s, c.Access, "caller's access token")
		expectUnauthenticated(t, s, d.Access, "access token of the session named in the body")
		expectRefreshRefused(t, s, d.Refresh, "refresh token named in the body")
		expect(t, s.do("GET", "/api/v1/users/me", e.Access, nil), http.StatusOK)

		// A forgery that only names another of the caller's sessions (its id is the "sid" of
		// every access token) ends the caller's session alone, as Refresh refuses it.
		g := s.loginAs(a.Email, a.Password)
		h := s.loginAs(a.Email, a.Password)
		hsid, _, _ := strings.Cut(h.Refresh, ".")
		forged := hsid + "." + strings.Repeat("F", 22) + "." + strings.Repeat("A", 43)
		expect(t, s.do("POST", "/api/v1/auth/logout", g.Access, map[string]any{"refresh_token": forged}), http.StatusNoContent)
		expectUnauthenticated(t, s, g.Access, "caller's access token after a logout with a forged refresh token")
		expect(t, s.do("GET", "/api/v1/users/me", h.Access, nil), http.StatusOK)
		expect(t, s.refreshWith(h.Refresh), http.StatusOK)

		// Someone else's refresh token in the body revokes nothing of theirs.
		victim := s.signup(uniqueEmail("victim"))
		expect(t, s.do("POST", "/api/v1/auth/logout", e.Access, map[string]any{"refresh_token": victim.Refresh}), http.StatusNoContent)
		expectUnauthenticated(t, s, e.Access, "caller's access token")
		expect(t, s.do("GET", "/api/v1/users/me", victim.Access, nil), http.StatusOK)
		expect(t, s.refreshWith(victim.Refresh), http.StatusOK)

		// An unusable refresh token in the body does not keep the caller's session alive.
		f := s.loginAs(a.Email, a.Password)
		expect(t, s.do("POST", "/api/v1/auth/logout", f.Access, map[string]any{"refresh_token": "not-a-refresh-token"}), http.StatusNoContent)
		expectUnauthenticated(t, s, f.Access, "access token after logout with a garbage refresh token")
		expectRefreshRefused(t, s, f.Refresh, "refresh token after logout with a garbage refresh token")

		// Logout needs a bearer token.
		r = s.do("POST", "/api/v1/auth/logout", "", nil)
		expectProblem(t, r, http.StatusUnauthorized, "unauthenticated")
		if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Error("logout without a token: no WWW-Authenticate: Bearer")
		}
	})
}

func TestSignupNameIsOptionalAndEditable(t *testing.T) {
	forEachBackendWith(t, nil, func(t *testing.T, s *server) {
		named := s.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": uniqueEmail("named"), "password": "correct horse battery", "name": "  Grace Hopper "})
		expect(t, named, http.StatusCreated)
		if u := named.JSON(t)["user"].(map[string]any); u["name"] != "Grace Hopper" {
			t.Fatalf("signup name not kept (trimmed): %v", u["name"])
		}
		a := s.signup(uniqueEmail("anon"))
		me := s.do("GET", "/api/v1/users/me", a.Access, nil)
		expect(t, me, http.StatusOK)
		if name, ok := me.JSON(t)["name"]; !ok || name != "" {
			t.Fatalf("a signup without a name has name %v", name)
		}
		expect(t, s.do("PATCH", "/api/v1/users/me", a.Access, map[string]any{"name": "Grace"}), http.StatusOK)
		me = s.do("GET", "/api/v1/users/me", a.Access, nil)
		if got := me.JSON(t)["name"]; got != "Grace" {
			t.Fatalf("name after PATCH /users/me: %v", got)
		}
		// An empty object changes nothing; a wrong type is malformed.
		expect(t, s.do("PATCH", "/api/v1/users/me", a.Access, map[string]any{}), http.StatusOK)
		expectProblem(t, s.do("PATCH", "/api/v1/users/me", a.Access, `{"name": 7}`), http.StatusBadRequest, "malformed_request")
		if got := s.do("GET", "/api/v1/users/me", a.Access, nil).JSON(t)["name"]; got != "Grace" {
			t.Fatalf("name changed by a no-op or refused PATCH: %v", got)
		}
		// The profile endpoint never changes the role.
		r := s.do("PATCH", "/api/v1/users/me", a.Access, map[string]any{"name": "Root", "role": "admin"})
		expect(t, r, http.StatusOK)
		if r.JSON(t)["role"] != "user" {
			t.Fatalf("PATCH /users/me made the caller an admin: %s", r.Body)
		}
		expectProblem(t, s.do("GET", "/api/v1/admin/users", a.Access, nil), http.StatusForbidden, "forbidden")
	})
}

// retryAfter reads a 429's Retry-After, which must be whole seconds, at least one.
func retryAfter(t *testing.T, r response) int {
	t.Helper()
	v := r.Header.Get("Retry-After")
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("Retry-After %q, want an integer number of seconds >= 1", v)
	}
	return n
}

func TestWrongPasswordsAreThrottledBefore40Guesses(t *testing.T) {
	forEachBackendWith(t, nil, func(t *testing.T, s *server) {
		a := s.signup(uniqueEmail("guess"))
		guesses := 0
		var blocked response
		for guesses < 40 {
			r := s.do("POST", "/api/v1/auth/login", "", map[string]any{"email": a.Email, "password": "guess number " + strconv.Itoa(guesses)})
			if r.Status == http.StatusTooManyRequests {
				blocked = r
				break
			}
			expectProblem(t, r, http.StatusUnauthorized, "invalid_credentials")
			guesses++
		}
		if blocked.Status != http.StatusTooManyRequests {
			t.Fatalf("no 429 after %d wrong passwords for one account", guesses)
		}
		t.Logf("429 after %d wrong passwords", guesses)
		expectProblem(t, blocked, http.StatusTooManyRequests, "too_many_attempts")
		retryAfter(t, blocked)
		// The block is on the account: another spelling of the same address shares it.
		r := s.do("POST", "/api/v1/auth/login", "", map[string]any{"email": " " + strings.ToUpper(a.Email), "password": "yet another guess"})
		expectProblem(t, r, http.StatusTooManyRequests, "too_many_attempts")
		retryAfter(t, r)
	})
}

func TestAccountLockoutLastsAtMostTheWindow(t *testing.T) {
	const window = 4 * time.Second
	extra := []string{"APP_THROTTLE_WINDOW=4s", "APP_THROTTLE_ACCOUNT_FAILURES=2", "APP_HTTP_TRUSTED_PROXIES=127.0.0.1"}
	forEachBackendWith(t, extra, func(t *testing.T, s *server) {
		owner := s.signup(uniqueEmail("owner"))
		const attacker, home = "203.0.113.7", "198.51.100.9"
		failures := 0
		for ; failures < 20; failures++ {
			r := s.loginFrom(attacker, owner.Email, "attacker guess "+strconv.Itoa(failures))
			if r.Status == http.StatusTooManyRequests {
				break
			}
			expectProblem(t, r, http.StatusUnauthorized, "invalid_credentials")
		}
		if failures != 2 {
			t.Fatalf("429 after %d failures, want it after APP_THROTTLE_ACCOUNT_FAILURES=2", failures)
		}
		stopped := time.Now()

		// The owner, from another address, is blocked too, but only for a while.
		r := s.loginFrom(home, owner.Email, owner.Password)
		expectProblem(t, r, http.StatusTooManyRequests, "too_many_attempts")
		if wait := retryAfter(t, r); time.Duration(wait)*time.Second > window {
			t.Fatalf("Retry-After %ds is longer than the %s window", wait, window)
		}
		for {
			wait := retryAfter(t, r)
			time.Sleep(time.Duration(wait) * time.Second)
			r = s.loginFrom(home, owner.Email, owner.Password)
			if r.Status == http.StatusOK {
				break
			}
			expectProblem(t, r, http.StatusTooManyRequests, "too_many_attempts")
			if time.Since(stopped) > window+2*time.Second {
				t.Fatalf("the owner is still locked out %s after the attack stopped (window %s)", time.Since(stopped), window)
			}
		}
		if took := time.Since(stopped); took > window+2*time.Second {
			t.Fatalf("the owner got in only after %s (window %s)", took, window)
		}
		expect(t, s.do("GET", "/api/v1/users/me", sessionAccount(t, r, owner.Email, owner.Password).Access, nil), http.StatusOK)
	})
}

func TestFailuresFromOneAddressAreThrottled(t *testing.T) {
	forEachBackendWith(t, []string{"APP_THROTTLE_ADDR_FAILURES=5"}, func(t *testing.T, s *server) {
		bystander := s.signup(uniqueEmail("bystander"))
		for i := range 5 {
			r := s.do("POST", "/api/v1/auth/login", "", map[string]any{"email": uniqueEmail("spray"), "password": "whatever " + strconv.Itoa(i)})
			expectProblem(t, r, http.StatusUnauthorized, "invalid_credentials")
		}
		r := s.do("POST", "/api/v1/auth/login", "", map[string]any{"email": uniqueEmail("spray"), "password": "whatever"})
		expectProblem(t, r, http.StatusTooManyRequests, "too_many_attempts")
		retryAfter(t, r)

		// Without trusted proxies, X-Forwarded-For is the client's to invent and is ignored.
		for i := range 5 {
			r := s.loginFrom("192.0.2."+strconv.Itoa(10+i), uniqueEmail("spray"), "whatever")
			expectProblem(t, r, http.StatusTooManyRequests, "too_many_attempts")
		}
		// The address is blocked, whatever account it tries.
		r = s.do("POST", "/api/v1/auth/login", "", map[string]any{"email": bystander.Email, "password": bystander.Password})
		expectProblem(t, r, http.StatusTooManyRequests, "too_many_attempts")
	})
}

func TestForwardedForIsHonouredOnlyFromTrustedProxies(t *testing.T) {
	extra := []string{"APP_THROTTLE_ADDR_FAILURES=3", "APP_HTTP_TRUSTED_PROXIES=127.0.0.1"}
	forEachBackendWith(t, extra, func(t *testing.T, s *server) {
		// Behind a trusted proxy, each forwarded address has its own budget.
		for i := range 8 {
			r := s.loginFrom("192.0.2."+strconv.Itoa(10+i), uniqueEmail("spread"), "whatever")
			expectProblem(t, r, http.StatusUnauthorized, "invalid_credentials")
		}
		for i := range 3 {
			r := s.loginFrom("198.51.100.20", uniqueEmail("one-addr"), "whatever "+strconv.Itoa(i))
			expectProblem(t, r, http.StatusUnauthorized, "invalid_credentials")
		}
		r := s.loginFrom("198.51.100.20", uniqueEmail("one-addr"), "whatever")
		expectProblem(t, r, http.StatusTooManyRequests, "too_many_attempts")
		retryAfter(t, r)
		// Another forwarded address is still served.
		a := s.signup(uniqueEmail("neighbour"))
		expect(t, s.loginFrom("198.51.100.21", a.Email, a.Password), http.StatusOK)

		// An IPv6 client may send from any address of its /64: the network has one budget,
		// and a new address in it does not buy a new one. Another /64 is someone else.
		for i := range 3 {
			r := s.loginFrom("2001:db8:7:7::"+strconv.Itoa(i+1), uniqueEmail("v6"), "whatever")
			expectProblem(t, r, http.StatusUnauthorized, "invalid_credentials")
		}
		r = s.loginFrom("2001:db8:7:7:ffff::99", uniqueEmail("v6"), "whatever")
		expectProblem(t, r, http.StatusTooManyRequests, "too_many_attempts")
		expectProblem(t, s.loginFrom("2001:db8:7:8::1", uniqueEmail("v6"), "whatever"), http.StatusUnauthorized, "invalid_credentials")
	})
}

// TestSignupsAreAtMostTheLimitPerWindow: "20 signups per address per throttle window" holds
// for every window, not only on average. With 3 per 6 s, a fourth signup is refused until the
// first leaves the window: it is still refused 2.5 s later, when a token bucket refilling 3 per
// 6 s would have let it in, and it is admitted once its Retry-After has passed.
func TestSignupsAreAtMostTheLimitPerWindow(t *testing.T) {
	extra := []string{"APP_THROTTLE_WINDOW=6s", "APP_THROTTLE_SIGNUP_ATTEMPTS=3", "APP_HTTP_TRUSTED_PROXIES=127.0.0.1"}
	forEachBackendWith(t, extra, func(t *testing.T, s *server) {
		const addr = "192.0.2.66"
		signup := func() response {
			t.Helper()
			return s.doWith("POST", "/api/v1/auth/signup", "", map[string]any{"email": uniqueEmail("window"), "password": "correct horse battery"},
				map[string]string{"X-Forwarded-For": addr})
		}
		first := time.Now()
		for range 3 {
			expect(t, signup(), http.StatusCreated)
		}
		r := signup()
		expectProblem(t, r, http.StatusTooManyRequests, "too_many_attempts")
		if wait := retryAfter(t, r); time.Since(first) < time.Second && wait < 5 {
			t.Fatalf("Retry-After %ds for a window of 6s that began %s ago", wait, time.Since(first))
		}
		time.Sleep(2500 * time.Millisecond)
		r = signup()
		if r.Status != http.StatusTooManyRequests {
			t.Fatalf("a fourth signup %s after the first three was answered %d, want 429: no 6 s may hold more than 3", time.Since(first), r.Status)
		}
		time.Sleep(time.Duration(retryAfter(t, r)) * time.Second)
		expect(t, signup(), http.StatusCreated)
		// Another address was never limited by these.
		expect(t, s.doWith("POST", "/api/v1/auth/signup", "", map[string]any{"email": uniqueEmail("window"), "password": "correct horse battery"},
			map[string]string{"X-Forwarded-For": "192.0.2.67"}), http.StatusCreated)
	})
}

// TestConcurrentRefreshesWithOneTokenLetOneWinAtMost sends one refresh token several times at
// once, as a client that retries eagerly (or a thief racing its owner) does. At most one of
// them may rotate it; every other use is reuse of a retired token, which revokes the session,
// so afterwards no token of that login works, the winner's included. Without a locking read
// of the session, MySQL let two or more of them rotate it, each from its own snapshot, and a
// retired token kept a session alive.
func TestConcurrentRefreshesWithOneTokenLetOneWinAtMost(t *testing.T) {
	forEachBackendWith(t, nil, func(t *testing.T, s *server) {
		a := s.signup(uniqueEmail("refrace"))
		const rounds, n = 6, 8
		for round := range rounds {
			login := s.loginAs(a.Email, a.Password)
			answers := make([]response, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					r, err := s.try(ctx, nil, "POST", "/api/v1/auth/refresh", "", strings.NewReader(`{"refresh_token":"`+login.Refresh+`"}`), nil)
					if err != nil {
						t.Error(err)
					}
					answers[i] = r
				})
			}
			wg.Wait()
			var winners []account
			for _, r := range answers {
				switch r.Status {
				case http.StatusOK:
					winners = append(winners, sessionAccount(t, r, a.Email, a.Password))
				case http.StatusUnauthorized:
					expectProblem(t, r, http.StatusUnauthorized, "invalid_refresh_token")
				default:
					t.Fatalf("round %d: a concurrent refresh answered %d: %s", round, r.Status, truncate(r.Body))
				}
			}
			if len(winners) > 1 {
				t.Fatalf("round %d: %d of %d concurrent refreshes with one token rotated it, want at most 1", round, len(winners), n)
			}
			why := fmt.Sprintf("round %d, after %d concurrent uses of one refresh token", round, n)
			expectRefreshRefused(t, s, login.Refresh, why)
			expectUnauthenticated(t, s, login.Access, why)
			for _, w := range winners {
				expectRefreshRefused(t, s, w.Refresh, why+": the winner's refresh token")
				expectUnauthenticated(t, s, w.Access, why+": the winner's access token")
			}
		}
	})
}

// TestLogoutRacingARefreshLeavesNothingUsable logs out while the same login refreshes. Either
// order is fine, but a logout that has been answered is never undone: a refresh that read the
// session before the logout committed must not write it back unrevoked. The window is narrow
// over HTTP; the accounts contract's locked-read test pins the lock that closes it.
func TestLogoutRacingARefreshLeavesNothingUsable(t *testing.T) {
	forEachBackendWith(t, nil, func(t *testing.T, s *server) {
		a := s.signup(uniqueEmail("logoutrace"))
		for round := range 8 {
			login := s.loginAs(a.Email, a.Password)
			var (
				wg        sync.WaitGroup
				refreshed response
				loggedOut response
			)
			// s.try, not s.do: a failure must not call t.Fatal outside the test's goroutine.
			send := func(out *response, path, token, body string) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				var err error
				if *out, err = s.try(ctx, nil, "POST", path, token, strings.NewReader(body), map[string]string{"Content-Type": "application/json"}); err != nil {
					t.Error(err)
				}
			}
			wg.Go(func() { send(&refreshed, "/api/v1/auth/refresh", "", `{"refresh_token":"`+login.Refresh+`"}`) })
			wg.Go(func() { send(&loggedOut, "/api/v1/auth/logout", login.Access, `{}`) })
			wg.Wait()
			if loggedOut.Status != http.StatusNoContent && loggedOut.Status != http.StatusUnauthorized {
				t.Fatalf("round %d: logout answered %d: %s", round, loggedOut.Status, truncate(loggedOut.Body))
			}
			why := fmt.Sprintf("round %d, logout racing a refresh", round)
			expectRefreshRefused(t, s, login.Refresh, why)
			switch refreshed.Status {
			case http.StatusOK:
				got := sessionAccount(t, refreshed, a.Email, a.Password)
				if loggedOut.Status == http.StatusNoContent {
					expectRefreshRefused(t, s, got.Refresh, why+": the refreshed token")
					expectUnauthenticated(t, s, got.Access, why+": the refreshed access token")
				}
			case http.StatusUnauthorized:
				expectProblem(t, refreshed, http.StatusUnauthorized, "invalid_refresh_token")
			default:
				t.Fatalf("round %d: refresh answered %d: %s", round, refreshed.Status, truncate(refreshed.Body))
			}
		}
	})
}

// other is a base64url character other than c.
func other(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}
