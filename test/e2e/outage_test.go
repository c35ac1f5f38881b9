package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/acme/postsvc/test/testdb"
)

// timedDo sends a request with a client-side deadline, so a hang fails the test instead of
// blocking it, and reports how long the answer took.
func timedDo(t *testing.T, s *server, method, path, token string) (response, time.Duration) {
	t.Helper()
	req, err := http.NewRequest(method, s.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v (after %s)", method, path, err, time.Since(start))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: body}, time.Since(start)
}

// TestReadinessFollowsTheDatabase starts the server on MySQL through a TCP proxy, takes the
// database away (refused connections, then a stalled network), and checks that /readyz turns
// 503, that API requests answer 503 unavailable with Retry-After within a few seconds instead
// of hanging, that /livez stays 200, that each failure is logged once with its cause, and that
// service resumes by itself once the database is back.
func TestReadinessFollowsTheDatabase(t *testing.T) {
	const requestTimeout = 2 * time.Second
	// The readiness ping has its own 2 s bound; a request its request timeout; allow for
	// scheduling on a busy machine.
	const answerWithin = requestTimeout + 3*time.Second

	modes := []struct {
		name string
		cut  func(*testdb.Proxy)
	}{
		{"refused", (*testdb.Proxy).Refuse},
		{"stalled", (*testdb.Proxy).Stall},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			dsn, proxy := testdb.MySQLBehindProxy(t)
			s := startServer(t, []string{"APP_DATABASE_DRIVER=mysql", "APP_DATABASE_DSN=" + dsn},
				"APP_HTTP_REQUEST_TIMEOUT="+requestTimeout.String())
			a := s.signup(uniqueEmail("outage"))
			id := s.addPost(a.Access, "before the outage")

			mode.cut(proxy)

			r, took := timedDo(t, s, "GET", "/readyz", "")
			expectProblem(t, r, http.StatusServiceUnavailable, "unavailable")
			if r.Header.Get("Retry-After") == "" || took > answerWithin {
				t.Fatalf("/readyz: Retry-After %q after %s", r.Header.Get("Retry-After"), took)
			}
			if r, _ := timedDo(t, s, "GET", "/livez", ""); r.Status != http.StatusOK {
				t.Fatalf("/livez during the outage = %d; it must not check the database", r.Status)
			}
			for _, path := range []string{"/api/v1/posts/" + id, "/api/v1/posts"} {
				r, took := timedDo(t, s, "GET", path, a.Access)
				expectProblem(t, r, http.StatusServiceUnavailable, "unavailable")
				if r.Header.Get("Retry-After") == "" || took > answerWithin {
					t.Fatalf("GET %s: Retry-After %q after %s", path, r.Header.Get("Retry-After"), took)
				}
				// The failure is logged once, at warn, with the cause; the access line is
				// the only other line of the request.
				rid := r.Header.Get("X-Request-ID")
				var lines []string
				deadline := time.Now().Add(5 * time.Second)
				for time.Now().Before(deadline) {
					lines = linesWith(s.stderr.String(), "request_id="+rid)
					if len(lines) >= 2 {
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
				causes := 0
				for _, l := range lines {
					if strings.Contains(l, "error=") {
						causes++
						if !strings.Contains(l, "unavailable") {
							t.Errorf("the error line does not say what happened: %s", l)
						}
					}
				}
				if causes != 1 || len(lines) != 2 {
					t.Errorf("request %s logged %d lines with %d errors, want the access line and one error:\n%s", rid, len(lines), causes, strings.Join(lines, "\n"))
				}
			}

			proxy.Restore()
			waitReady(t, s)
			// Requests succeed again without a restart; the pool may need a try or two to
			// replace connections broken during the outage.
			var got response
			for range 10 {
				if got, _ = timedDo(t, s, "GET", "/api/v1/posts/"+id, a.Access); got.Status == http.StatusOK {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			expect(t, got, http.StatusOK)
			s.addPost(a.Access, "after the outage")
		})
	}
}

// linesWith returns the log lines containing s.
func linesWith(logs, s string) []string {
	var out []string
	for line := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}

// waitReady waits until /readyz answers 200.
func waitReady(t *testing.T, s *server) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, _ := timedDo(t, s, "GET", "/readyz", "")
		if r.Status == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d 30 s after the database came back: %s", r.Status, truncate(r.Body))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
