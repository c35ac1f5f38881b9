package e2e

// Many instances, one truth (issue 13): three server processes on one MySQL database, with
// and without the Redis they share, checked request by request. Principals are served from
// each process's memory, so every revocation must reach the other instances' memory before
// the revoking call is answered: the request that follows it on any instance, including one
// that served the same credential a moment before, must see it. The same holds for a user's
// own post writes and that user's cached post lists. The login and signup throttles must
// admit their limits across the instances together, and background jobs must be shared by the
// instances without any running twice.

import (
	"database/sql"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/postsvc/test/testdb"
)

// Throttle limits of the Redis cluster: small, so that the budgets are reached in a few
// requests; the window is a day so that no attempt comes back while the suite runs.
const (
	multiAccountFailures = 5
	multiAddrFailures    = 8
	multiSignups         = 4
)

// Rounds of the revocation checks. A round runs every scenario once, on rotating instances.
const (
	sequentialRounds        = 20
	concurrentWorkers       = 12
	concurrentRounds        = 2
	withoutRedisRounds      = 6
	withoutRedisConcurrency = 6
)

// multiECGs is the number of ECGs (and so analysis jobs) the jobs check uploads.
const multiECGs = 30

// TestMultiInstance runs three instances on one MySQL database: first with one Redis prefix
// shared by all three (principals served from memory), then without Redis (principals read
// from the database on every request). It logs the requests sent and the time they took.
func TestMultiInstance(t *testing.T) {
	start := time.Now()
	var requests, driving int64
	addUp := func(c *cluster) {
		requests += c.requests.Load()
		driving += c.driving.Load()
	}

	t.Run("redis", func(t *testing.T) {
		backend := append([]string{"APP_DATABASE_DRIVER=mysql", "APP_DATABASE_DSN=" + testdb.MySQLDSN(t)}, redisEnv(t)...)
		c := startCluster(t, backend,
			// redis_health below asserts that every check ran on Redis, not on the database
			// fallback. On a loaded CI machine (servers built with -race, other packages
			// testing beside them) a round trip once took over the default 500 ms, which is an
			// outage to the service; the outage tests (redis_outage_test.go) cover that path.
			"APP_REDIS_TIMEOUT=3s",
			"APP_THROTTLE_WINDOW=24h",
			"APP_THROTTLE_ACCOUNT_FAILURES="+strconv.Itoa(multiAccountFailures),
			"APP_THROTTLE_ADDR_FAILURES="+strconv.Itoa(multiAddrFailures),
			"APP_THROTTLE_SIGNUP_ATTEMPTS="+strconv.Itoa(multiSignups),
		)
		defer addUp(c)
		t.Run("revocations", func(t *testing.T) { runSequential(t, c, sequentialRounds) })
		t.Run("revocations_concurrent", func(t *testing.T) { runConcurrent(t, c, concurrentWorkers, concurrentRounds) })
		t.Run("throttle", func(t *testing.T) { testSharedThrottle(t, c) })
		t.Run("jobs", func(t *testing.T) { testSharedJobs(t, c) })
		t.Run("redis_health", func(t *testing.T) {
			texts, err := c.metrics()
			if err != nil {
				t.Fatal(err)
			}
			up, _ := perInstance(texts, "postsvc_redis_up")
			_, failures := perInstance(texts, "postsvc_redis_failures_total")
			hits, sumHits := perInstance(texts, "postsvc_principal_cache_hits_total")
			_, sumMisses := perInstance(texts, "postsvc_principal_cache_misses_total")
			t.Logf("principals served from memory %v (total %.0f), read from the database %.0f; Redis up %v, failed calls %.0f",
				hits, sumHits, sumMisses, up, failures)
			// The checks above ran on Redis, not on the database fallback of an unreachable one.
			for i, v := range up {
				if v != 1 {
					t.Errorf("postsvc_redis_up is %v on %s", v, c.name(i))
				}
			}
			if failures != 0 {
				t.Errorf("%.0f Redis calls failed during the run: some checks ran on the fallback", failures)
			}
			for i, v := range hits {
				if v == 0 {
					t.Errorf("no principal served from memory on %s: the cache under test was not used", c.name(i))
				}
			}
			// Every stamp read went through the barrier, let through by a recent round trip
			// or waiting for one of its own: both counters are the board's, per instance.
			fresh, sumFresh := perInstance(texts, "postsvc_redis_board_reads_fresh_total")
			waited, sumWaited := perInstance(texts, "postsvc_redis_board_reads_waited_total")
			t.Logf("stamp reads let through by a fresh round trip %v (total %.0f), waited for one %v (total %.0f)",
				fresh, sumFresh, waited, sumWaited)
			for i := range fresh {
				if fresh[i]+waited[i] == 0 {
					t.Errorf("no stamp read counted on %s (postsvc_redis_board_reads_*_total)", c.name(i))
				}
			}
		})
		t.Run("logs", func(t *testing.T) { checkLogs(t, c) })
	})

	t.Run("mysql_without_redis", func(t *testing.T) {
		c := startCluster(t, []string{"APP_DATABASE_DRIVER=mysql", "APP_DATABASE_DSN=" + testdb.MySQLDSN(t)})
		defer addUp(c)
		t.Run("revocations", func(t *testing.T) { runSequential(t, c, withoutRedisRounds) })
		t.Run("revocations_concurrent", func(t *testing.T) { runConcurrent(t, c, withoutRedisConcurrency, 1) })
		t.Run("cleanup_jobs", func(t *testing.T) {
			db := c.openDB(t)
			waitCleanupJobs(t, c, db)
		})
		t.Run("logs", func(t *testing.T) { checkLogs(t, c) })
	})

	wall := time.Since(start)
	verdict := "all assertions held"
	if t.Failed() {
		verdict = "SOME ASSERTIONS FAILED"
	}
	rate := 0.0
	if driving > 0 {
		rate = float64(requests) / time.Duration(driving).Seconds()
	}
	t.Logf("three instances on this machine: %d requests in %.1f s of request phases (%.0f/s), %.1f s wall time with six process starts; %s",
		requests, time.Duration(driving).Seconds(), rate, wall.Seconds(), verdict)
}

// scenario is one revocation (or list freshness) check: the revoking call is made on instance
// a, after the credential (or list) was served by every instance, and the next request on
// every instance, the others first, must see it. With storm, every instance is also probed
// while the call is in flight (steps.revoke).
type scenario struct {
	name string
	run  func(c *cluster, a int, storm bool) error
}

var scenarios = []scenario{
	{"logout", scenarioLogout},
	{"refresh reuse", scenarioRefreshReuse},
	{"role change", scenarioRoleChange},
	{"user deletion", scenarioUserDeletion},
	{"API key deletion", scenarioKeyDeletion},
	{"post add and delete", scenarioPosts},
}

// runSequential runs every scenario rounds times, one request at a time, the revoking
// instance rotating, and stops at the first failure.
func runSequential(t *testing.T, c *cluster, rounds int) {
	before := c.requests.Load()
	took := c.drive(func() {
		for r := range rounds {
			for k, sc := range scenarios {
				if err := sc.run(c, (r+k)%clusterSize, false); err != nil {
					t.Fatalf("round %d, %s: %v", r, sc.name, err)
				}
			}
		}
	})
	n := c.requests.Load() - before
	t.Logf("%d rounds of %d scenarios, one request at a time: %d requests in %s (%.0f/s)",
		rounds, len(scenarios), n, took.Round(time.Millisecond), float64(n)/took.Seconds())
}

// runConcurrent runs workers goroutines at once, each running every scenario rounds times on
// users of its own, with storms, the revoking instance differing between workers, so that
// revocations, caches and their invalidations of many users cross on every instance at the
// same time.
func runConcurrent(t *testing.T, c *cluster, workers, rounds int) {
	before := c.requests.Load()
	took := c.drive(func() {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := range workers {
			wg.Go(func() {
				<-start
				for r := range rounds {
					for k := range scenarios {
						sc := scenarios[(w+k)%len(scenarios)]
						if err := sc.run(c, (w+r+k)%clusterSize, true); err != nil {
							t.Errorf("worker %d round %d, %s: %v", w, r, sc.name, err)
							return
						}
					}
				}
			})
		}
		close(start)
		wg.Wait()
	})
	n := c.requests.Load() - before
	t.Logf("%d workers at once, %d rounds of %d scenarios each, every instance probed during each revoking call: %d requests in %s (%.0f/s)",
		workers, rounds, len(scenarios), n, took.Round(time.Millisecond), float64(n)/took.Seconds())
}

const mePath = "/api/v1/users/me"

// scenarioLogout: a session's access token served by every instance stops working on every
// instance once its logout on a is answered, and so does its refresh token.
func scenarioLogout(c *cluster, a int, storm bool) error {
	s := c.steps(fmt.Sprintf("logout on %s", c.name(a)))
	u := s.signup(c.next())
	for _, i := range order(a) {
		s.want("before logout", i, "GET", mePath, u.Access, nil, http.StatusOK, "")
	}
	s.revoke(storm, order(a), c.get(mePath, u.Access), status(http.StatusUnauthorized, "unauthenticated"), func() {
		s.want("logout", a, "POST", "/api/v1/auth/logout", u.Access, nil, http.StatusNoContent, "")
	})
	for _, i := range order(a) {
		s.want("access token after logout", i, "GET", mePath, u.Access, nil, http.StatusUnauthorized, "unauthenticated")
	}
	s.want("refresh token after logout", others(a)[0], "POST", "/api/v1/auth/refresh", "",
		map[string]any{"refresh_token": u.Refresh}, http.StatusUnauthorized, "invalid_refresh_token")
	return s.err
}

// scenarioRefreshReuse: presenting a retired refresh token on a revokes the whole session on
// every instance: the access tokens of the first login and of its rotation, and the newest
// refresh token.
func scenarioRefreshReuse(c *cluster, a int, storm bool) error {
	s := c.steps(fmt.Sprintf("refresh-token reuse on %s", c.name(a)))
	u := s.signup(c.next())
	rotated := s.session(s.want("rotate", others(a)[0], "POST", "/api/v1/auth/refresh", "",
		map[string]any{"refresh_token": u.Refresh}, http.StatusOK, ""))
	for _, i := range order(a) {
		s.want("first access token before reuse", i, "GET", mePath, u.Access, nil, http.StatusOK, "")
		s.want("rotated access token before reuse", i, "GET", mePath, rotated.Access, nil, http.StatusOK, "")
	}
	s.revoke(storm, order(a), c.get(mePath, rotated.Access), status(http.StatusUnauthorized, "unauthenticated"), func() {
		s.want("reuse of the retired refresh token", a, "POST", "/api/v1/auth/refresh", "",
			map[string]any{"refresh_token": u.Refresh}, http.StatusUnauthorized, "invalid_refresh_token")
	})
	for _, i := range order(a) {
		s.want("rotated access token after reuse", i, "GET", mePath, rotated.Access, nil, http.StatusUnauthorized, "unauthenticated")
		s.want("first access token after reuse", i, "GET", mePath, u.Access, nil, http.StatusUnauthorized, "unauthenticated")
	}
	s.want("newest refresh token after reuse", others(a)[1], "POST", "/api/v1/auth/refresh", "",
		map[string]any{"refresh_token": rotated.Refresh}, http.StatusUnauthorized, "invalid_refresh_token")
	return s.err
}

// scenarioRoleChange: a user promoted to admin on a loses the posts (403) and gains the admin
// routes on every instance at once, with the same token; demoted on another instance, the
// reverse.
func scenarioRoleChange(c *cluster, a int, storm bool) error {
	s := c.steps(fmt.Sprintf("role change on %s", c.name(a)))
	u := s.signup(c.next())
	self := "/api/v1/admin/users/" + u.ID
	for _, i := range order(a) {
		s.want("posts before promotion", i, "GET", "/api/v1/posts", u.Access, nil, http.StatusOK, "")
	}
	s.revoke(storm, order(a), c.get("/api/v1/posts", u.Access), status(http.StatusForbidden, "forbidden"), func() {
		s.want("promote", a, "PATCH", self, c.admin.Access, map[string]any{"role": "admin"}, http.StatusOK, "")
	})
	for _, i := range order(a) {
		s.want("posts after promotion", i, "GET", "/api/v1/posts", u.Access, nil, http.StatusForbidden, "forbidden")
		s.want("admin route after promotion", i, "GET", self, u.Access, nil, http.StatusOK, "")
	}
	b := others(a)[0]
	s.revoke(storm, order(b), c.get(self, u.Access), status(http.StatusForbidden, "forbidden"), func() {
		s.want("demote", b, "PATCH", self, c.admin.Access, map[string]any{"role": "user"}, http.StatusOK, "")
	})
	for _, i := range order(b) {
		s.want("admin route after demotion", i, "GET", self, u.Access, nil, http.StatusForbidden, "forbidden")
		s.want("posts after demotion", i, "GET", "/api/v1/posts", u.Access, nil, http.StatusOK, "")
	}
	return s.err
}

// scenarioUserDeletion: a user deleted on a loses its session and its API key on every
// instance at once.
func scenarioUserDeletion(c *cluster, a int, storm bool) error {
	s := c.steps(fmt.Sprintf("user deletion on %s", c.name(a)))
	u := s.signup(c.next())
	k := s.createKey(c.next(), u.Access)
	for _, i := range order(a) {
		s.want("session before deletion", i, "GET", mePath, u.Access, nil, http.StatusOK, "")
		s.want("API key before deletion", i, "GET", mePath, k.Key, nil, http.StatusOK, "")
	}
	// The storm probes the session on one instance and the key on the others.
	probe := func(i int) (response, error) {
		if i == others(a)[0] {
			return c.call(i, "GET", mePath, u.Access, nil, nil)
		}
		return c.call(i, "GET", mePath, k.Key, nil, nil)
	}
	s.revoke(storm, order(a), probe, status(http.StatusUnauthorized, "unauthenticated"), func() {
		s.want("delete the user", a, "DELETE", "/api/v1/admin/users/"+u.ID, c.admin.Access, nil, http.StatusNoContent, "")
		if s.err == nil {
			c.deleted.Add(1)
		}
	})
	for _, i := range order(a) {
		s.want("session after deletion", i, "GET", mePath, u.Access, nil, http.StatusUnauthorized, "unauthenticated")
		s.want("API key after deletion", i, "GET", mePath, k.Key, nil, http.StatusUnauthorized, "unauthenticated")
	}
	return s.err
}

// scenarioKeyDeletion: an API key deleted on a is refused on every instance at once; its
// owner's session is untouched.
func scenarioKeyDeletion(c *cluster, a int, storm bool) error {
	s := c.steps(fmt.Sprintf("API key deletion on %s", c.name(a)))
	u := s.signup(c.next())
	k := s.createKey(c.next(), u.Access)
	for _, i := range order(a) {
		s.want("API key before deletion", i, "GET", "/api/v1/posts", k.Key, nil, http.StatusOK, "")
	}
	s.revoke(storm, order(a), c.get("/api/v1/posts", k.Key), status(http.StatusUnauthorized, "unauthenticated"), func() {
		s.want("delete the key", a, "DELETE", "/api/v1/api-keys/"+k.ID, u.Access, nil, http.StatusNoContent, "")
	})
	for _, i := range order(a) {
		s.want("API key after deletion", i, "GET", "/api/v1/posts", k.Key, nil, http.StatusUnauthorized, "unauthenticated")
	}
	s.want("session after the key's deletion", others(a)[1], "GET", mePath, u.Access, nil, http.StatusOK, "")
	return s.err
}

// scenarioPosts: with the user's list cached on every instance (a second read is a HIT), a
// post added on a is in the user's next list on every instance; with the new list cached
// again, the post deleted on another instance is gone from the next list on every instance.
func scenarioPosts(c *cluster, a int, storm bool) error {
	s := c.steps(fmt.Sprintf("posts written on %s", c.name(a)))
	u := s.signup(c.next())
	first := s.addPost(c.next(), u.Access, "first "+u.ID)
	for _, i := range order(a) {
		s.list("list before the add", i, u.Access, "", first)
		s.list("list before the add, again", i, u.Access, "HIT", first)
	}
	var second string
	// The storm cannot know the new post's id before the add is answered: probes started
	// after it must hold a second post, the one the add returned (checked just below).
	s.revoke(storm, order(a), c.get("/api/v1/posts", u.Access), postCount(2), func() {
		second = s.addPost(a, u.Access, "second "+u.ID)
	})
	for _, i := range order(a) {
		s.list("list after the add", i, u.Access, "", second, first)
	}
	b := others(a)[0]
	for _, i := range order(b) {
		s.list("list after the add, again", i, u.Access, "HIT", second, first)
	}
	s.revoke(storm, order(b), c.get("/api/v1/posts", u.Access), listHas(second, false), func() {
		s.want("delete the post", b, "DELETE", "/api/v1/posts/"+second, u.Access, nil, http.StatusNoContent, "")
	})
	for _, i := range order(b) {
		s.list("list after the delete", i, u.Access, "", first)
	}
	return s.err
}

// testSharedThrottle checks that the three instances admit each throttle's limit in total:
// one attempt at a time, round robin, and a burst at once followed by attempts one at a time.
func testSharedThrottle(t *testing.T, c *cluster) {
	// guess sends wrong passwords for one account, each attempt from an address of its own
	// so that only the account's budget applies.
	guess := func(email string) func(i, n int) (response, error) {
		return func(i, n int) (response, error) {
			return c.call(i, "POST", "/api/v1/auth/login", "", map[string]any{"email": email, "password": "guess " + strconv.Itoa(n)},
				map[string]string{"X-Forwarded-For": fmt.Sprintf("198.18.%d.%d", n/250, 1+n%250)})
		}
	}
	spray := func(addr string) func(i, n int) (response, error) {
		return func(i, n int) (response, error) {
			return c.call(i, "POST", "/api/v1/auth/login", "", map[string]any{"email": uniqueEmail("spray"), "password": "whatever"}, map[string]string{"X-Forwarded-For": addr})
		}
	}
	signup := func(addr string) func(i, n int) (response, error) {
		return func(i, n int) (response, error) {
			return c.call(i, "POST", "/api/v1/auth/signup", "", map[string]any{"email": uniqueEmail("throttled"), "password": "correct horse battery"}, map[string]string{"X-Forwarded-For": addr})
		}
	}
	const failed, created = "401 invalid_credentials", "201 "

	c.drive(func() {
		for _, burst := range []int{0, 24} {
			mode := "one at a time"
			if burst > 0 {
				mode = fmt.Sprintf("%d at once, then one at a time", burst)
			}
			t.Run("account failures "+mode, func(t *testing.T) {
				s := c.steps("victim")
				victim := s.signup(c.next())
				if s.err != nil {
					t.Fatal(s.err)
				}
				checkBudget(t, c, "wrong passwords for one account", multiAccountFailures, burst, failed, guess(victim.Email))
				// The account is blocked on every instance, for its owner too.
				for i := range clusterSize {
					r, err := c.call(i, "POST", "/api/v1/auth/login", "", map[string]any{"email": victim.Email, "password": victim.Password},
						map[string]string{"X-Forwarded-For": "203.0.113.10"})
					if err != nil {
						t.Fatal(err)
					}
					if r.Status != http.StatusTooManyRequests {
						t.Errorf("the owner's login on %s after the account's budget was spent: status %d, want 429", c.name(i), r.Status)
					}
				}
			})
			t.Run("address failures "+mode, func(t *testing.T) {
				checkBudget(t, c, "wrong logins from one address", multiAddrFailures, burst, failed, spray(fmt.Sprintf("198.19.0.%d", 1+burst)))
			})
			t.Run("signups "+mode, func(t *testing.T) {
				checkBudget(t, c, "signups from one address", multiSignups, burst, created, signup(fmt.Sprintf("198.19.1.%d", 1+burst)))
			})
		}
	})
}

// checkBudget sends attempts of one throttle key and checks that the instances together admit
// exactly limit of them. burst attempts are sent at once first (attempt n to instance n%3);
// of those, some may be shed with 503 overloaded, which gives the attempt back. Then attempts
// go one at a time, round robin, until the first 429, which must come after exactly limit
// admitted attempts in total; then every instance refuses the next one.
func checkBudget(t *testing.T, c *cluster, what string, limit, burst int, admitted string, attempt func(i, n int) (response, error)) {
	t.Helper()
	const refused, shed = "429 too_many_attempts", "503 overloaded"
	got := 0
	if burst > 0 {
		var mu sync.Mutex
		seen := outcomes{}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for n := range burst {
			wg.Go(func() {
				<-start
				r, err := attempt(n%clusterSize, n)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen.add(r)
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		if err := seen.unexpected(admitted, refused, shed); err != nil {
			t.Fatalf("%s, %d at once over %d instances: %v", what, burst, clusterSize, err)
		}
		got = seen[admitted]
		t.Logf("%s, %d at once over %d instances: %d admitted, %d refused, %d shed", what, burst, clusterSize, got, seen[refused], seen[shed])
		if got > limit {
			t.Fatalf("%s: %d of %d sent at once over %d instances were admitted, the limit is %d in total (each instance keeps a budget of its own?)",
				what, got, burst, clusterSize, limit)
		}
	}
	sent := burst
	for {
		if sent > burst+limit+20 {
			t.Fatalf("%s: no 429 after %d attempts", what, sent)
		}
		i := sent % clusterSize
		r, err := attempt(i, sent)
		sent++
		if err != nil {
			t.Fatal(err)
		}
		switch key := strconv.Itoa(r.Status) + " " + problemCode(r); key {
		case admitted:
			got++
			if got > limit {
				t.Fatalf("%s: attempt %d, on %s, was admitted: %d admitted in total over %d instances, the limit is %d in total (each instance keeps a budget of its own?)",
					what, sent, c.name(i), got, clusterSize, limit)
			}
			continue
		case shed:
			time.Sleep(50 * time.Millisecond)
			continue
		case refused:
			retryAfter(t, r)
			if got != limit {
				t.Fatalf("%s: 429 on %s after %d admitted in total, want %d", what, c.name(i), got, limit)
			}
			t.Logf("%s over %d instances: %d admitted in total, then 429 (after %d attempts)", what, clusterSize, got, sent)
		default:
			t.Fatalf("%s: attempt %d on %s answered %s: %s", what, sent, c.name(i), key, truncate(r.Body))
		}
		break
	}
	for i := range clusterSize {
		r, err := attempt(i, sent)
		sent++
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != http.StatusTooManyRequests || problemCode(r) != "too_many_attempts" {
			t.Fatalf("%s: once the budget is spent, %s answered %d: %s", what, c.name(i), r.Status, truncate(r.Body))
		}
		retryAfter(t, r)
	}
}

// testSharedJobs uploads ECGs over the three instances (each upload commits one analysis job)
// and checks that every ECG is analysed, correctly, and that the instances together settled
// exactly one attempt per job: postsvc_jobs_attempts_total counts the attempts each process
// settled, so summed over the instances "done" equals the number of jobs when none ran twice,
// and no attempt was retried, failed or handed back. Every instance must have run some.
// Completed jobs are deleted, so the queue must end empty. The cleanup jobs of the users the
// revocation checks deleted are checked the same way.
func testSharedJobs(t *testing.T, c *cluster) {
	texts, err := c.metrics()
	if err != nil {
		t.Fatal(err)
	}
	baseline := settled(texts, "ecg.analyse")
	db := c.openDB(t)

	s := c.steps("owners")
	owners := []account{s.signup(0), s.signup(1), s.signup(2)}
	if s.err != nil {
		t.Fatal(s.err)
	}
	uploads := make([]ecgUpload, multiECGs)
	ids := make([]string, multiECGs)
	c.drive(func() {
		var wg sync.WaitGroup
		work := make(chan int)
		for range 6 {
			wg.Go(func() {
				for n := range work {
					uploads[n] = makeECG(fmt.Sprintf("multi-%d", n), 2, 400, uint64(n)+1)
					i := (n / clusterSize) % clusterSize // each owner uploads to every instance
					r, err := c.call(i, "POST", "/api/v1/ecgs", owners[n%clusterSize].Access, uploads[n].JSON(), nil)
					if err != nil {
						t.Error(err)
						continue
					}
					if r.Status != http.StatusAccepted {
						t.Errorf("upload %d on %s: status %d: %s", n, c.name(i), r.Status, truncate(r.Body))
						continue
					}
					summary, err := decodeSummary(r.Body)
					if err != nil {
						t.Error(err)
						continue
					}
					ids[n] = summary.ID
				}
			})
		}
		for n := range multiECGs {
			work <- n
		}
		close(work)
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		// Every ECG reaches done, read on an instance other than the one it was uploaded to.
		deadline := time.Now().Add(30 * time.Second)
		for n := range multiECGs {
			i := (n/clusterSize + 1) % clusterSize
			for {
				r, err := c.call(i, "GET", ecgPath(ids[n], "/insights"), owners[n%clusterSize].Access, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				if r.Status != http.StatusOK {
					t.Fatalf("insights of ECG %d on %s: status %d: %s", n, c.name(i), r.Status, truncate(r.Body))
				}
				in, err := decodeInsights(r.Body)
				if err != nil {
					t.Fatal(err)
				}
				if in.Status != "pending" {
					if err := checkInsights(uploads[n], ids[n], in); err != nil {
						t.Fatalf("ECG %d: %v", n, err)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("ECG %d still pending after 30 s", n)
				}
				time.Sleep(25 * time.Millisecond)
			}
		}
	})

	// The outcome is counted just after the job is deleted: wait until the queue is empty and
	// every job is counted.
	deadline := time.Now().Add(10 * time.Second)
	for {
		texts, err = c.metrics()
		if err != nil {
			t.Fatal(err)
		}
		queued := count(t, db, "SELECT COUNT(*) FROM jobs WHERE kind = 'ecg.analyse'")
		done := sum(since(settled(texts, "ecg.analyse"), baseline, "done"))
		if queued == 0 && done >= multiECGs {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s after every ECG was done: %d analysis jobs left in the table, %.0f attempts done", queued, done)
		}
		time.Sleep(50 * time.Millisecond)
	}
	each := checkSettled(t, c, baseline, "ecg.analyse", multiECGs)
	t.Logf("%d analysis jobs, attempts done per instance: %v", multiECGs, each)
	for i, n := range each {
		if n == 0 {
			t.Errorf("%s ran no analysis job: the jobs were not shared", c.name(i))
		}
	}
	if n := count(t, db, "SELECT COUNT(*) FROM ecgs WHERE status = 'done'"); n != multiECGs {
		t.Errorf("%d ECGs done in the table, want %d", n, multiECGs)
	}
	waitCleanupJobs(t, c, db)
}

// waitCleanupJobs waits for the cleanup jobs of the users deleted so far to leave the queue
// and checks that the instances together settled exactly one attempt per deleted user, done.
func waitCleanupJobs(t *testing.T, c *cluster, db *sql.DB) {
	t.Helper()
	const kind = "accounts.user_cleanup"
	want := int(c.deleted.Load())
	deadline := time.Now().Add(15 * time.Second)
	for {
		left := count(t, db, "SELECT COUNT(*) FROM jobs WHERE kind = ?", kind)
		texts, err := c.metrics()
		if err != nil {
			t.Fatal(err)
		}
		done := sum(since(settled(texts, kind), nil, "done"))
		if left == 0 && done >= float64(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("15 s on: %d cleanup jobs left in the table, %.0f attempts done for %d deleted users", left, done, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	each := checkSettled(t, c, nil, kind, want)
	t.Logf("%d users deleted, cleanup attempts done per instance: %v", want, each)
}

// settled returns, for each instance's /metrics, the attempts of kind that instance settled,
// by outcome (postsvc_jobs_attempts_total counts this process's attempts only).
func settled(texts []string, kind string) []map[string]float64 {
	prefix := `postsvc_jobs_attempts_total{kind="` + kind + `",outcome="`
	out := make([]map[string]float64, len(texts))
	for i, text := range texts {
		out[i] = map[string]float64{}
		for line := range strings.SplitSeq(text, "\n") {
			rest, ok := strings.CutPrefix(line, prefix)
			if !ok {
				continue
			}
			outcome, value, ok := strings.Cut(rest, `"} `)
			if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); ok && err == nil {
				out[i][outcome] = v
			}
		}
	}
	return out
}

// since returns each instance's count of outcome in now minus that in base (nil: zero).
func since(now, base []map[string]float64, outcome string) []float64 {
	out := make([]float64, len(now))
	for i := range now {
		out[i] = now[i][outcome]
		if base != nil {
			out[i] -= base[i][outcome]
		}
	}
	return out
}

// checkSettled waits a moment for a second run of any job to settle, then checks that, since
// base, the instances together settled exactly want attempts of kind, every one of them done.
// A second run of a job is either settled (and counted here) or finds its lease lost, which
// the worker logs (checkLogs). It returns the attempts done per instance.
func checkSettled(t *testing.T, c *cluster, base []map[string]float64, kind string, want int) []float64 {
	t.Helper()
	time.Sleep(500 * time.Millisecond)
	texts, err := c.metrics()
	if err != nil {
		t.Fatal(err)
	}
	now := settled(texts, kind)
	outcomes := map[string]bool{}
	for _, m := range now {
		for o := range m {
			outcomes[o] = true
		}
	}
	for o := range outcomes {
		n := sum(since(now, base, o))
		switch {
		case o == "done" && n != float64(want):
			t.Errorf("%s: the instances settled %.0f attempts as done (%v) for %d jobs: some job ran more than once, or not at all",
				kind, n, since(now, base, o), want)
		case o == "retried" && n != 0:
			// An attempt that failed (its transaction rolled back) and was run again later by
			// whichever instance claimed it: at-least-once doing its work, not two holders of
			// one job. Shown, with the reason the worker logged (checkLogs), not failed.
			t.Logf("NOTE %s: %.0f attempts failed and were retried (%v); the logs subtest shows why", kind, n, since(now, base, o))
		case o != "done" && n != 0:
			t.Errorf("%s: %.0f attempts %s (%v)", kind, n, o, since(now, base, o))
		}
	}
	return since(now, base, "done")
}

// checkLogs fails on what the instances logged (at warn and above) about job attempts whose
// outcome could not be recorded (a lost lease: another worker held the job too) or that were
// handed back, and on any error; other warnings (a retried attempt, say) are shown.
func checkLogs(t *testing.T, c *cluster) {
	for i, n := range c.nodes {
		for line := range strings.SplitSeq(n.stderr.String(), "\n") {
			switch {
			case line == "":
			case strings.Contains(line, "level=ERROR"), strings.Contains(line, "outcome not recorded"),
				strings.Contains(line, "job not settled"), strings.Contains(line, "handed back"):
				t.Errorf("%s logged: %s", c.name(i), line)
			default:
				t.Logf("%s logged: %s", c.name(i), line)
			}
		}
	}
}

func sum(v []float64) float64 {
	total := 0.0
	for _, x := range v {
		total += x
	}
	return total
}
