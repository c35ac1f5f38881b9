package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/acme/postsvc/adapters/httpapi"
)

// TestOpsHandlerServesOperationsOnly checks what the operations listener answers: metrics
// from the scrape handler, the probes from the API's router, and nothing else of the API.
// Every answer carries X-Request-ID (the client's sane one, or a fresh one), the 404s and 405s
// included, and the handler behind it sees the same id; the 404s and 405s are problem
// documents, the 405s with Allow.
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
		{http.MethodDelete, "/livez", http.StatusMethodNotAllowed, ""},
		{http.MethodPost, "/nowhere", http.StatusNotFound, ""},
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
			if c.by == "" {
				expectOpsProblem(t, c.method, c.path, rec)
			}
		}
	}
}

// expectOpsProblem checks that an answer of the operations listener's own is a problem
// document of the right code (the body only for GET: a HEAD answer has none), with Allow on
// a 405.
func expectOpsProblem(t *testing.T, method, path string, rec *httptest.ResponseRecorder) {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s %s: Content-Type %q, want application/problem+json", method, path, ct)
	}
	want := map[int]string{http.StatusNotFound: "not_found", http.StatusMethodNotAllowed: "method_not_allowed"}[rec.Code]
	if rec.Code == http.StatusMethodNotAllowed && rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("%s %s: 405 with Allow %q, want \"GET, HEAD\"", method, path, rec.Header().Get("Allow"))
	}
	if method == http.MethodHead {
		return
	}
	var p struct {
		Status int    `json:"status"`
		Code   string `json:"code"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != rec.Code || p.Code != want {
		t.Errorf("%s %s: body %q (%v), want a problem document with status %d and code %q", method, path, rec.Body, err, rec.Code, want)
	}
}
