package httpapi_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/test/fakes"
)

// TestRequestIDOutsideTheRouter checks the middleware of handlers served outside the router
// (the operations and profiler listeners): every answer carries X-Request-ID, the client's
// sane one or a fresh one, also when the handler writes nothing itself or answers HEAD.
func TestRequestIDOutsideTheRouter(t *testing.T) {
	var seen string
	h := httpapi.RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = httpapi.RequestIDFrom(r.Context())
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
		}
	}))
	for _, c := range []struct{ method, path, sent string }{
		{http.MethodGet, "/", ""},
		{http.MethodHead, "/", ""},
		{http.MethodGet, "/missing", ""},
		{http.MethodGet, "/", "ops-check.1"},
		{http.MethodGet, "/missing", "ops-check.2"},
		{http.MethodGet, "/", "not sane"},
		{http.MethodGet, "/", strings.Repeat("x", 129)},
	} {
		seen = ""
		req := httptest.NewRequest(c.method, c.path, nil)
		if c.sent != "" {
			req.Header.Set(httpapi.HeaderRequestID, c.sent)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		got := rec.Header().Get(httpapi.HeaderRequestID)
		if !saneID.MatchString(got) {
			t.Errorf("%s %s sent %q: X-Request-ID %q, want a sane id", c.method, c.path, c.sent, got)
		}
		if kept := saneID.MatchString(c.sent); kept != (got == c.sent) {
			t.Errorf("%s %s sent %q: X-Request-ID %q (kept: %v, want %v)", c.method, c.path, c.sent, got, got == c.sent, kept)
		}
		if seen != got {
			t.Errorf("%s %s: the handler saw request id %q, the response carries %q", c.method, c.path, seen, got)
		}
	}
}

// TestRequestIDAroundTheRouter checks that the router, served behind RequestID (the probes on
// the operations listener), keeps the id already given rather than making a second one: the
// response and the access log name the same request.
func TestRequestIDAroundTheRouter(t *testing.T) {
	logs := &fakes.LogBuffer{}
	router, err := httpapi.NewRouter(httpapi.RouterDeps{
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	httpapi.RequestID(router).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/livez", nil))
	ids := rec.Header().Values(httpapi.HeaderRequestID)
	if rec.Code != http.StatusOK || len(ids) != 1 || !saneID.MatchString(ids[0]) {
		t.Fatalf("GET /livez behind RequestID: %d with X-Request-ID %q, want 200 with one fresh id", rec.Code, ids)
	}
	var line struct {
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(logs.String())), &line); err != nil || line.RequestID != ids[0] {
		t.Fatalf("access log %q (%v): want request_id %q, the response's", logs.String(), err, ids[0])
	}
}
