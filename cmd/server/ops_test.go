package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/acme/postsvc/adapters/httpapi"
)

// TestOpsHandlerServesOperationsOnly checks what the operations listener answers: metrics
// from the scrape handler, the probes from the API's router, and nothing else of the API.
// Every answer carries X-Request-ID (the client's sane one, or a fresh one), the mux's own
// 404s and 405s included, and the handler behind it sees the same id.
func TestOpsHandlerServesOperationsOnly(t *testing.T) {
	from := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Served-By", name)
			w.Header().Set("X-Seen-ID", httpapi.RequestIDFrom(r.Context()))
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
		{http.MethodHead, "/livez", http.StatusOK, "api"},
		{http.MethodGet, "/readyz", http.StatusOK, "api"},
		{http.MethodPost, "/metrics", http.StatusMethodNotAllowed, ""},
		{http.MethodGet, "/api/v1/users/me", http.StatusNotFound, ""},
		{http.MethodGet, "/openapi.json", http.StatusNotFound, ""},
		{http.MethodGet, "/docs", http.StatusNotFound, ""},
		{http.MethodHead, "/nowhere", http.StatusNotFound, ""},
		{http.MethodGet, "/", http.StatusNotFound, ""},
	}
	for _, c := range cases {
		for _, sent := range []string{"", "ops-test-id"} {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(c.method, c.path, nil)
			if sent != "" {
				req.Header.Set(httpapi.HeaderRequestID, sent)
			}
			h.ServeHTTP(rec, req)
			if rec.Code != c.status || rec.Header().Get("X-Served-By") != c.by {
				t.Errorf("%s %s = %d from %q, want %d from %q", c.method, c.path, rec.Code, rec.Header().Get("X-Served-By"), c.status, c.by)
			}
			id := rec.Header().Get(httpapi.HeaderRequestID)
			if id == "" || (sent != "" && id != sent) {
				t.Errorf("%s %s sent X-Request-ID %q: answered with %q", c.method, c.path, sent, id)
			}
			if c.by != "" && rec.Header().Get("X-Seen-ID") != id {
				t.Errorf("%s %s: the handler saw request id %q, the response carries %q", c.method, c.path, rec.Header().Get("X-Seen-ID"), id)
			}
		}
	}
}
