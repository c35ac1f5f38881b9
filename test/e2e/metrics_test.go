package e2e

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// metricValue returns the value of the first sample whose line starts with prefix (a metric
// name with its labels), and whether there is one.
func metricValue(text, prefix string) (float64, bool) {
	for line := range strings.SplitSeq(text, "\n") {
		if rest, ok := strings.CutPrefix(line, prefix+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}

// TestMetricsEndpoint drives a few requests through the real binary and reads /metrics:
// request series carry route templates (never raw paths or ids), and the pool, cache and
// hashing series are exported.
func TestMetricsEndpoint(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *server) {
		a := s.signup(uniqueEmail("metrics"))
		id := s.addPost(a.Access, "hello metrics")
		expect(t, s.do("GET", "/api/v1/posts/"+id, a.Access, nil), http.StatusOK)
		expect(t, s.do("GET", "/api/v1/posts/"+id, a.Access, nil), http.StatusOK)
		expect(t, s.do("GET", "/api/v1/posts", a.Access, nil), http.StatusOK) // cache miss
		expect(t, s.do("GET", "/api/v1/posts", a.Access, nil), http.StatusOK) // cache hit
		expect(t, s.do("GET", "/no/such/thing/"+id, "", nil), http.StatusNotFound)

		r := s.do("GET", "/metrics", "", nil)
		expect(t, r, http.StatusOK)
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Fatalf("Content-Type = %q", ct)
		}
		text := string(r.Body)
		if strings.Contains(text, id) {
			t.Fatalf("a post id reached a label:\n%s", text)
		}
		want := map[string]float64{
			`postsvc_http_requests_total{method="GET",route="/api/v1/posts/:id",status="200"}`:                 2,
			`postsvc_http_requests_total{method="POST",route="/api/v1/posts",status="201"}`:                    1,
			`postsvc_http_requests_total{method="POST",route="/api/v1/auth/signup",status="201"}`:              1,
			`postsvc_http_requests_total{method="GET",route="unmatched",status="404"}`:                         1,
			`postsvc_http_request_duration_seconds_count{method="GET",route="/api/v1/posts/:id",status="200"}`: 2,
			"postsvc_post_cache_hits_total":   1,
			"postsvc_post_cache_misses_total": 1,
		}
		for series, v := range want {
			if got, ok := metricValue(text, series); !ok || got != v {
				t.Errorf("%s = %v (present %v), want %v", series, got, ok, v)
			}
		}
		for _, series := range []string{
			"postsvc_db_max_open_connections", "postsvc_db_open_connections", "postsvc_db_in_use_connections",
			"postsvc_db_idle_connections", "postsvc_db_wait_count_total", "postsvc_db_wait_duration_seconds_total",
			"postsvc_post_cache_evictions_total", "postsvc_post_cache_bytes", "postsvc_post_cache_items",
			"postsvc_password_hashes_in_flight", "go_goroutines", "process_resident_memory_bytes",
		} {
			if _, ok := metricValue(text, series); !ok {
				t.Errorf("series %s missing", series)
			}
		}
		if v, _ := metricValue(text, "postsvc_db_open_connections"); v < 1 {
			t.Errorf("postsvc_db_open_connections = %v, want the pool's connections", v)
		}
		if v, _ := metricValue(text, "postsvc_post_cache_bytes"); v <= 0 {
			t.Errorf("postsvc_post_cache_bytes = %v after a cached page", v)
		}
		// Every route label is a template the router knows, or "unmatched".
		route := regexp.MustCompile(`route="([^"]*)"`)
		for _, m := range route.FindAllStringSubmatch(text, -1) {
			if m[1] != "unmatched" && !strings.HasPrefix(m[1], "/") {
				t.Errorf("route label %q", m[1])
			}
			if strings.Contains(m[1], "no/such") {
				t.Errorf("raw path in a route label: %q", m[1])
			}
		}
	})
}
