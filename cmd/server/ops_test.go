package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/acme/postsvc/adapters/metrics"
	"github.com/acme/postsvc/config"
)

// TestMetricsRouteFollowsTheOpsSetting checks that GET /metrics is a route of the API's
// router only while no operations listener is configured.
func TestMetricsRouteFollowsTheOpsSetting(t *testing.T) {
	m, err := metrics.New(metrics.Sources{})
	if err != nil {
		t.Fatal(err)
	}
	scrape := newScrapeHandler(m)

	extras := routerExtras(m, scrape, config.HTTP{})
	if len(extras.Routes) != 1 || extras.Routes[0].Method != http.MethodGet || extras.Routes[0].Path != "/metrics" {
		t.Errorf("without %s the API must serve GET /metrics: %+v", config.EnvName("http.ops_addr"), extras.Routes)
	}
	extras = routerExtras(m, scrape, config.HTTP{OpsAddr: ":9090"})
	if len(extras.Routes) != 0 {
		t.Errorf("with an operations listener the API must not serve /metrics: %+v", extras.Routes)
	}
	if len(extras.Middleware) != 1 {
		t.Errorf("the request metrics middleware must stay on the API's router either way")
	}
}

// TestOpsHandlerServesOperationsOnly checks what the operations listener answers: metrics
// from the scrape handler, the probes from the API's router, and nothing else of the API.
func TestOpsHandlerServesOperationsOnly(t *testing.T) {
	from := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Served-By", name)
		})
	}
	a := &app{router: from("api"), scrape: from("scrape")}
	h := a.opsHandler()
	cases := []struct {
		method, path string
		status       int
		by           string
	}{
		{http.MethodGet, "/metrics", http.StatusOK, "scrape"},
		{http.MethodHead, "/metrics", http.StatusOK, "scrape"},
		{http.MethodGet, "/livez", http.StatusOK, "api"},
		{http.MethodGet, "/readyz", http.StatusOK, "api"},
		{http.MethodPost, "/metrics", http.StatusMethodNotAllowed, ""},
		{http.MethodGet, "/api/v1/users/me", http.StatusNotFound, ""},
		{http.MethodGet, "/openapi.json", http.StatusNotFound, ""},
		{http.MethodGet, "/docs", http.StatusNotFound, ""},
		{http.MethodGet, "/", http.StatusNotFound, ""},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		if rec.Code != c.status || rec.Header().Get("X-Served-By") != c.by {
			t.Errorf("%s %s = %d from %q, want %d from %q", c.method, c.path, rec.Code, rec.Header().Get("X-Served-By"), c.status, c.by)
		}
	}
}
