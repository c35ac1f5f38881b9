package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/acme/postsvc/test/testdb"
	"github.com/acme/postsvc/test/testredis"
)

// TestRedisOutageIsNotAnOutage cuts the server off Redis (through the TCP proxy the database
// outage tests use) while it serves principals from memory: every request is still answered,
// none with a 5xx, within a bounded time; revocations made during the cut apply at once (the
// principals are read from the database); /readyz stays 200; the change is logged once and
// shown in /metrics; and when Redis is back the server returns to memory reads by itself.
func TestRedisOutageIsNotAnOutage(t *testing.T) {
	const redisTimeout = 300 * time.Millisecond
	const answerWithin = 3 * time.Second // a request may wait for one Redis timeout, on a busy machine
	for _, mode := range testdb.Cuts() {
		t.Run(mode.Name, func(t *testing.T) {
			u, err := url.Parse(testredis.URL(t))
			if err != nil {
				t.Fatal(err)
			}
			proxy := testdb.NewProxy(t, u.Host)
			u.Host = proxy.Addr()
			s := startServer(t, []string{"APP_DATABASE_DRIVER=mysql", "APP_DATABASE_DSN=" + testdb.MySQLDSN(t)},
				"APP_REDIS_URL="+u.String(), "APP_REDIS_PREFIX="+testredis.Prefix(), "APP_REDIS_TIMEOUT="+redisTimeout.String(), "APP_LOG_LEVEL=info")
			a := s.signup(uniqueEmail("redis-outage"))
			other := s.loginAs(a.Email, a.Password)
			s.addPost(a.Access, "before the cut")
			for range 3 {
				expect(t, s.do("GET", "/api/v1/posts", a.Access, nil), http.StatusOK)
				expect(t, s.do("GET", "/api/v1/posts", other.Access, nil), http.StatusOK)
			}
			if s.metric("postsvc_redis_up") != 1 || s.metric("postsvc_principal_cache_hits_total") == 0 {
				t.Fatalf("before the cut: redis_up %v, principal hits %v; want Redis up and principals from memory",
					s.metric("postsvc_redis_up"), s.metric("postsvc_principal_cache_hits_total"))
			}

			mode.Apply(proxy)

			timed := func(method, path, token string, body any) response {
				t.Helper()
				start := time.Now()
				r := s.do(method, path, token, body)
				if took := time.Since(start); took > answerWithin {
					t.Fatalf("%s %s took %s with Redis cut", method, path, took)
				}
				if r.Status >= 500 {
					t.Fatalf("%s %s = %d with Redis cut: %s", method, path, r.Status, truncate(r.Body))
				}
				return r
			}
			for i := range 10 {
				expect(t, timed("GET", "/api/v1/posts", a.Access, nil), http.StatusOK)
				expect(t, timed("POST", "/api/v1/posts", a.Access, map[string]any{"text": "during the cut " + string(rune('a'+i))}), http.StatusCreated)
			}
			expect(t, timed("GET", "/readyz", "", nil), http.StatusOK)
			// A revocation during the cut applies on the very next request.
			expect(t, timed("POST", "/api/v1/auth/logout", other.Access, nil), http.StatusNoContent)
			expectProblem(t, timed("GET", "/api/v1/posts", other.Access, nil), http.StatusUnauthorized, "unauthenticated")
			// Failed logins are still throttled (locally) and never answered 5xx.
			for range 3 {
				expectProblem(t, timed("POST", "/api/v1/auth/login", "", map[string]any{"email": a.Email, "password": "wrong password"}),
					http.StatusUnauthorized, "invalid_credentials")
			}
			if s.metric("postsvc_redis_up") != 0 || s.metric("postsvc_redis_outages_total") != 1 {
				t.Fatalf("during the cut: redis_up %v, outages %v; want 0 and 1", s.metric("postsvc_redis_up"), s.metric("postsvc_redis_outages_total"))
			}

			proxy.Restore()
			deadline := time.Now().Add(15 * time.Second)
			for s.metric("postsvc_redis_up") != 1 {
				if time.Now().After(deadline) {
					t.Fatal("the server did not use Redis again within 15 s of it answering")
				}
				expect(t, s.do("GET", "/api/v1/posts", a.Access, nil), http.StatusOK)
				time.Sleep(100 * time.Millisecond)
			}
			hits := s.metric("postsvc_principal_cache_hits_total")
			for range 3 {
				r := s.do("GET", "/api/v1/posts", a.Access, nil)
				expect(t, r, http.StatusOK)
				if !strings.Contains(string(r.Body), "during the cut j") {
					t.Fatalf("the list after the cut misses a post added during it: %s", truncate(r.Body))
				}
			}
			if s.metric("postsvc_principal_cache_hits_total") <= hits {
				t.Fatal("principals are not served from memory again after Redis came back")
			}
			expectProblem(t, s.do("GET", "/api/v1/posts", other.Access, nil), http.StatusUnauthorized, "unauthenticated")

			logs := s.stderr.String()
			if n := len(linesWith(logs, "redis unreachable")); n != 1 {
				t.Errorf("the cut was logged %d times, want once", n)
			}
			if n := len(linesWith(logs, "redis answers again")); n != 1 {
				t.Errorf("the return was logged %d times, want once", n)
			}
		})
	}
}

// TestRedisCutOffFromOneInstance is a partition: one instance loses Redis while the other
// keeps it, so the cut-off instance cannot publish what it commits. A logout and a post made
// through it must still apply on the very next request to the other instance, which serves
// principals and post lists from memory: the cut-off instance answers them only once its
// membership lease in Redis has lapsed, and the other's next read finds it lapsed and reads
// again from the database. Both cuts are tried: the connection refused, and stalled.
func TestRedisCutOffFromOneInstance(t *testing.T) {
	for _, mode := range testdb.Cuts() {
		t.Run(mode.Name, func(t *testing.T) {
			shared, proxy, viaProxy, direct := sharedRedisBehindProxy(t)
			cut := startServer(t, shared, "APP_REDIS_URL="+viaProxy)
			healthy := startServer(t, shared, "APP_REDIS_URL="+direct)

			a := cut.signup(uniqueEmail("partition"))
			other := healthy.loginAs(a.Email, a.Password)
			first := cut.addPost(a.Access, "before the cut")
			warmFromMemory(t, healthy, a, other)

			mode.Apply(proxy)
			second := cut.addPost(a.Access, "during the cut")
			r := healthy.do("GET", "/api/v1/posts", a.Access, nil)
			expect(t, r, http.StatusOK)
			if !strings.Contains(string(r.Body), second) || !strings.Contains(string(r.Body), first) {
				t.Fatalf("the healthy instance's next list after a post added through the cut-off one misses it (X-Cache %s): %s",
					r.Header.Get("X-Cache"), truncate(r.Body))
			}
			expect(t, cut.do("POST", "/api/v1/auth/logout", other.Access, nil), http.StatusNoContent)
			expectProblem(t, healthy.do("GET", "/api/v1/posts", other.Access, nil), http.StatusUnauthorized, "unauthenticated")

			proxy.Restore()
			deadline := time.Now().Add(15 * time.Second)
			for cut.metric("postsvc_redis_up") != 1 {
				if time.Now().After(deadline) {
					t.Fatal("the cut-off instance did not use Redis again within 15 s of it answering")
				}
				time.Sleep(100 * time.Millisecond)
			}
			expectProblem(t, cut.do("GET", "/api/v1/posts", other.Access, nil), http.StatusUnauthorized, "unauthenticated")
			expectProblem(t, healthy.do("GET", "/api/v1/posts", other.Access, nil), http.StatusUnauthorized, "unauthenticated")
		})
	}
}

// TestRedisUnreachableFromStart: an instance that cannot reach Redis from the moment it starts
// never joins the membership set, so it has no lease whose lapse would tell the others about
// its writes. It says so through the database instead (the cut-off table): a post and a logout
// made through it apply on the very next request to the healthy instance, which served both
// the principal and the page from memory before; the healthy instance shows the cut-off
// instance in /metrics meanwhile, and serves from memory again once that instance has reached
// Redis.
func TestRedisUnreachableFromStart(t *testing.T) {
	for _, mode := range testdb.Cuts() {
		t.Run(mode.Name, func(t *testing.T) {
			shared, proxy, viaProxy, direct := sharedRedisBehindProxy(t)
			healthy := startServer(t, shared, "APP_REDIS_URL="+direct)
			mode.Apply(proxy)
			cut := startServer(t, shared, "APP_REDIS_URL="+viaProxy)
			if cut.metric("postsvc_redis_up") != 0 {
				t.Fatal("the instance behind the cut proxy reports Redis up")
			}

			a := healthy.signup(uniqueEmail("never-joined"))
			other := healthy.loginAs(a.Email, a.Password)
			first := healthy.addPost(a.Access, "before")
			warmFromMemory(t, healthy, a, other)

			second := cut.addPost(a.Access, "through the instance that never reached Redis")
			r := healthy.do("GET", "/api/v1/posts", a.Access, nil)
			expect(t, r, http.StatusOK)
			if !strings.Contains(string(r.Body), second) || !strings.Contains(string(r.Body), first) {
				t.Fatalf("the healthy instance's next list misses the post added through the cut-off one (X-Cache %s): %s",
					r.Header.Get("X-Cache"), truncate(r.Body))
			}
			expect(t, cut.do("POST", "/api/v1/auth/logout", other.Access, nil), http.StatusNoContent)
			expectProblem(t, healthy.do("GET", "/api/v1/posts", other.Access, nil), http.StatusUnauthorized, "unauthenticated")
			if n := healthy.metric("postsvc_redis_cutoff_instances"); n != 1 {
				t.Fatalf("the healthy instance counts %v cut-off instances, want 1", n)
			}

			proxy.Restore()
			deadline := time.Now().Add(15 * time.Second)
			for cut.metric("postsvc_redis_up") != 1 || healthy.metric("postsvc_redis_cutoff_instances") != 0 {
				if time.Now().After(deadline) {
					t.Fatal("the cut-off instance did not reach Redis and withdraw its notice within 15 s of Redis answering it")
				}
				time.Sleep(100 * time.Millisecond)
			}
			expectProblem(t, healthy.do("GET", "/api/v1/posts", other.Access, nil), http.StatusUnauthorized, "unauthenticated")
			hits := healthy.metric("postsvc_principal_cache_hits_total")
			for range 3 {
				expect(t, healthy.do("GET", "/api/v1/posts", a.Access, nil), http.StatusOK)
			}
			if healthy.metric("postsvc_principal_cache_hits_total") <= hits {
				t.Fatal("the healthy instance does not serve principals from memory again after the cut-off instance came back")
			}
		})
	}
}

// sharedRedisBehindProxy is the setting of two instances that share one MySQL database, JWT
// secret and Redis prefix, one of which reaches Redis through a proxy that can be cut: the
// settings both get, the proxy, and the Redis URL through the proxy and direct.
func sharedRedisBehindProxy(t *testing.T) (shared []string, proxy *testdb.Proxy, viaProxy, direct string) {
	t.Helper()
	u, err := url.Parse(testredis.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy = testdb.NewProxy(t, u.Host)
	direct = u.String()
	u.Host = proxy.Addr()
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	shared = []string{
		"APP_DATABASE_DRIVER=mysql", "APP_DATABASE_DSN=" + testdb.MySQLDSN(t),
		"APP_AUTH_JWT_SECRET=" + hex.EncodeToString(secret),
		"APP_REDIS_PREFIX=" + testredis.Prefix(), "APP_REDIS_TIMEOUT=300ms",
	}
	return shared, proxy, u.String(), direct
}

// warmFromMemory lists a's posts with both sessions on s until s serves the principals and the
// page from memory, and fails the test if it does not: a test of what s keeps must first have
// s keep it.
func warmFromMemory(t *testing.T, s *server, a, other account) {
	t.Helper()
	for range 3 {
		expect(t, s.do("GET", "/api/v1/posts", other.Access, nil), http.StatusOK)
		expect(t, s.do("GET", "/api/v1/posts", a.Access, nil), http.StatusOK)
	}
	if r := s.do("GET", "/api/v1/posts", a.Access, nil); r.Header.Get("X-Cache") != "HIT" {
		t.Fatalf("the instance did not serve the page from its cache: X-Cache %q", r.Header.Get("X-Cache"))
	}
	if s.metric("postsvc_principal_cache_hits_total") == 0 {
		t.Fatal("the instance served no principal from memory: the test would not exercise its cache")
	}
}
