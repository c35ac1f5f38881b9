package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

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
