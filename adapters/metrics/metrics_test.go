package metrics_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/adapters/metrics"
)

func init() { gin.SetMode(gin.TestMode) }

func newMetrics(t *testing.T) *metrics.Metrics {
	t.Helper()
	m, err := metrics.New(metrics.Sources{
		DBStats: func() sql.DBStats {
			return sql.DBStats{MaxOpenConnections: 20, OpenConnections: 3, InUse: 1, Idle: 2, WaitCount: 7, WaitDuration: 1500 * time.Millisecond}
		},
		Cache: func() metrics.CacheStats {
			return metrics.CacheStats{Hits: 11, Misses: 4, Evictions: 2, Rejected: 1, Bytes: 4096, Items: 3}
		},
		HashesInFlight: func() int64 { return 2 },
		HashesQueued:   func() int64 { return 5 },
		HashesShed:     func() int64 { return 9 },
		BoardReads:     func() (int64, int64) { return 40, 3 },
		Media: func() metrics.MediaStats {
			return metrics.MediaStats{Uploaded: 6, UploadedBytes: 123456, Refused: 2, Thumbnails: 5, Placeholders: 1, Swept: 3}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// scrape returns the text exposition served by the metrics handler.
func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics = %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func assertLines(t *testing.T, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("metrics lack %q", w)
		}
	}
	if t.Failed() {
		t.Logf("exposition:\n%s", text)
	}
}

func TestRequestsAreLabelledByRouteTemplate(t *testing.T) {
	m := newMetrics(t)
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.Use(m.Middleware(httpapi.RecordedStatus))
	e.GET("/api/v1/posts/:id", func(c *gin.Context) { c.Status(http.StatusOK) })
	e.DELETE("/api/v1/posts/:id", func(c *gin.Context) { c.Status(http.StatusNoContent) })
	e.GET("/boom", func(*gin.Context) { panic("boom") })
	// A request whose client went away is answered 503 by httpapi.Fail, which nobody reads;
	// it is counted as 499, so that clients' hang-ups do not count as server errors.
	e.GET("/gone", func(c *gin.Context) { httpapi.Fail(c, fmt.Errorf("list: %w", context.Canceled)) })
	e.GET("/metrics", gin.WrapH(m.Handler()))

	serve := func(method, path string) {
		defer func() { _ = recover() }() // the /boom panic, which the router's recovery would catch
		e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, path, nil))
	}
	for _, id := range []string{"p-1", "p-2", "secret-looking-id"} {
		serve("GET", "/api/v1/posts/"+id)
	}
	serve("DELETE", "/api/v1/posts/p-1")
	serve("GET", "/no/such/path/12345")
	serve("PUT", "/api/v1/posts/p-1")
	serve("BREW", "/api/v1/posts/p-1")
	serve("GET", "/boom")
	serve("GET", "/gone")

	text := scrape(t, e)
	assertLines(t, text,
		`postsvc_http_requests_total{method="GET",route="/api/v1/posts/:id",status="200"} 3`,
		`postsvc_http_requests_total{method="DELETE",route="/api/v1/posts/:id",status="204"} 1`,
		`postsvc_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`postsvc_http_requests_total{method="PUT",route="unmatched",status="405"} 1`,
		`postsvc_http_requests_total{method="OTHER",route="unmatched",status="405"} 1`,
		`postsvc_http_requests_total{method="GET",route="/boom",status="500"} 1`,
		`postsvc_http_requests_total{method="GET",route="/gone",status="499"} 1`,
		`postsvc_http_request_duration_seconds_bucket{method="GET",route="/api/v1/posts/:id",status="200",le="0.005"}`,
		`postsvc_http_request_duration_seconds_count{method="GET",route="/api/v1/posts/:id",status="200"} 3`,
	)
	for _, raw := range []string{"p-1", "p-2", "secret-looking-id", "/no/such/path", "BREW"} {
		if strings.Contains(text, raw) {
			t.Errorf("a raw path or method reached a label: %q", raw)
		}
	}
}

func TestSourcesAreExported(t *testing.T) {
	text := scrape(t, newMetrics(t).Handler())
	assertLines(t, text,
		"postsvc_db_max_open_connections 20",
		"postsvc_db_open_connections 3",
		"postsvc_db_in_use_connections 1",
		"postsvc_db_idle_connections 2",
		"postsvc_db_wait_count_total 7",
		"postsvc_db_wait_duration_seconds_total 1.5",
		"postsvc_post_cache_hits_total 11",
		"postsvc_post_cache_misses_total 4",
		"postsvc_post_cache_evictions_total 2",
		"postsvc_post_cache_rejected_total 1",
		"postsvc_post_cache_bytes 4096",
		"postsvc_post_cache_items 3",
		"postsvc_password_hashes_in_flight 2",
		"postsvc_password_hashes_queued 5",
		"postsvc_password_hashes_shed_total 9",
		"postsvc_media_images_uploaded_total 6",
		"postsvc_media_uploaded_bytes_total 123456",
		"postsvc_media_uploads_refused_total 2",
		"postsvc_media_thumbnails_made_total 5",
		"postsvc_media_thumbnail_placeholders_total 1",
		"postsvc_media_objects_swept_total 3",
		"postsvc_redis_board_reads_fresh_total 40",
		"postsvc_redis_board_reads_waited_total 3",
		"go_goroutines ",
		"# TYPE postsvc_post_cache_hits_total counter",
		"# TYPE postsvc_post_cache_bytes gauge",
	)
}

func TestNilSourcesAreLeftOut(t *testing.T) {
	m, err := metrics.New(metrics.Sources{})
	if err != nil {
		t.Fatal(err)
	}
	text := scrape(t, m.Handler())
	for _, absent := range []string{"postsvc_db_", "postsvc_post_cache_", "postsvc_password_", "postsvc_media_", "postsvc_redis_"} {
		if strings.Contains(text, absent) {
			t.Errorf("metrics without a source include %s", absent)
		}
	}
}

// TestRegistriesAreIndependent: two instances in one process (tests, or two servers) must
// not share series, which the global default registry would do.
func TestRegistriesAreIndependent(t *testing.T) {
	a, b := newMetrics(t), newMetrics(t)
	e := gin.New()
	e.Use(a.Middleware(nil))
	e.GET("/x", func(c *gin.Context) { c.Status(http.StatusOK) })
	e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
	if strings.Contains(scrape(t, b.Handler()), `route="/x"`) {
		t.Fatal("a request recorded by one instance shows in the other")
	}
}
