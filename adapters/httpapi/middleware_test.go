package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/posts/post"
	"github.com/acme/postsvc/ports/accounts"
)

var saneID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

func TestRequestID(t *testing.T) {
	cases := []struct {
		name, sent string
		kept       bool
	}{
		{"absent", "", false},
		{"sane", "abc-123_X.y", true},
		{"uuid", "0b9f6c1e-8d7a-4a43-9a55-2f2f5d0b7c11", true},
		{"128 characters", strings.Repeat("a", 128), true},
		{"129 characters", strings.Repeat("a", 129), false},
		{"slash", "abc/def", false},
		{"space", "abc def", false},
		{"markup", "<script>", false},
		{"non-ascii", "café", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t)
			// One public route, one authenticated refusal and one unknown route: every
			// response carries the id.
			for _, r := range []request{
				{Method: "GET", Path: "/livez"},
				{Method: "GET", Path: "/api/v1/users/me"},
				{Method: "GET", Path: "/nowhere"},
			} {
				r.Header = map[string]string{"X-Request-ID": tc.sent}
				got := hs.do(r).Header().Get("X-Request-ID")
				if tc.kept && got != tc.sent {
					t.Fatalf("%s %s: X-Request-ID = %q, want the client's %q", r.Method, r.Path, got, tc.sent)
				}
				if !tc.kept && (got == tc.sent || !saneID.MatchString(got)) {
					t.Fatalf("%s %s: X-Request-ID = %q, want a fresh sane id", r.Method, r.Path, got)
				}
			}
		})
	}
	hs := newHarness(t)
	a := hs.do(request{Method: "GET", Path: "/livez"}).Header().Get("X-Request-ID")
	b := hs.do(request{Method: "GET", Path: "/livez"}).Header().Get("X-Request-ID")
	if a == b {
		t.Fatalf("generated ids repeat: %q", a)
	}
}

func TestAuthentication(t *testing.T) {
	cases := []struct {
		name      string
		header    []string // Authorization values; nil sends none
		authErr   error
		status    int
		challenge string
	}{
		{"missing", nil, nil, 401, "Bearer"},
		{"empty", []string{""}, nil, 401, "Bearer"},
		{"basic", []string{"Basic dXNlcjpwYXNz"}, nil, 401, "Bearer"},
		{"scheme only", []string{"Bearer"}, nil, 401, "Bearer"},
		{"scheme and space", []string{"Bearer "}, nil, 401, "Bearer"},
		{"unknown token", []string{"Bearer nope"}, nil, 401, `Bearer error="invalid_token"`},
		{"token with spaces", []string{"Bearer a b"}, nil, 401, `Bearer error="invalid_token"`},
		{"oversized token", []string{"Bearer " + strings.Repeat("x", 5000)}, nil, 401, `Bearer error="invalid_token"`},
		{"two headers", []string{"Bearer " + userToken, "Bearer " + userToken}, nil, 401, `Bearer error="invalid_token"`},
		{"verifier error", []string{"Bearer " + userToken}, errors.New("token is malformed: signature invalid"), 401, `Bearer error="invalid_token"`},
		{"valid", []string{"Bearer " + userToken}, nil, 200, ""},
		{"lower-case scheme", []string{"bearer " + userToken}, nil, 200, ""},
		{"upper-case scheme", []string{"BEARER " + userToken}, nil, 200, ""},
		{"database down", []string{"Bearer " + userToken}, fmt.Errorf("principal: %w", domain.ErrUnavailable), 503, ""},
		{"database slow", []string{"Bearer " + userToken}, context.DeadlineExceeded, 503, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t)
			var seen []string
			hs.auth.authenticate = func(ctx context.Context, token string) (identity.Principal, error) {
				seen = append(seen, token)
				if _, ok := ctx.Deadline(); !ok {
					t.Error("Authenticate called without the request deadline")
				}
				if tc.authErr != nil {
					return identity.Principal{}, tc.authErr
				}
				if token == userToken {
					return alice, nil
				}
				return identity.Principal{}, domain.ErrUnauthenticated
			}
			req := httptest.NewRequest("GET", "/api/v1/users/me", nil)
			for _, v := range tc.header {
				req.Header.Add("Authorization", v)
			}
			rec := hs.serve(req)
			switch tc.status {
			case 200:
				if rec.Code != 200 {
					t.Fatalf("status = %d: %s", rec.Code, rec.Body.String())
				}
				if len(seen) != 1 || seen[0] != userToken {
					t.Fatalf("Authenticate got %q, want the bare token", seen)
				}
				if _, arg := hs.auth.last(); !reflect.DeepEqual(arg, alice) {
					t.Fatalf("Me got principal %+v, want %+v", arg, alice)
				}
			case 401:
				assertProblem(t, rec, 401, "unauthenticated")
				if got := rec.Header().Get("WWW-Authenticate"); got != tc.challenge {
					t.Fatalf("WWW-Authenticate = %q, want %q", got, tc.challenge)
				}
				if hs.auth.count() != 0 {
					t.Fatal("the handler ran for an unauthenticated request")
				}
			case 503:
				assertProblem(t, rec, 503, "unavailable")
				if rec.Header().Get("WWW-Authenticate") != "" || rec.Header().Get("Retry-After") != "5" {
					t.Fatalf("503 headers: %v", rec.Header())
				}
			}
		})
	}
}

func TestRequestTimeoutAnswers503(t *testing.T) {
	hs := newHarness(t, func(d *httpapi.RouterDeps) { d.HTTP.RequestTimeout = 50 * time.Millisecond })
	hs.posts.get = func(ctx context.Context, _ string) (*post.Post, error) {
		// A database that never answers: only the request deadline ends the wait.
		<-ctx.Done()
		return nil, fmt.Errorf("query posts: %w", ctx.Err())
	}
	start := time.Now()
	rec := hs.do(request{Method: "GET", Path: "/api/v1/posts/p-1", Token: userToken})
	assertProblem(t, rec, 503, "unavailable")
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Fatalf("answered after %s", elapsed)
	}
}

func TestProbes(t *testing.T) {
	var dbErr error
	readiness := httpapi.NewReadiness(func(ctx context.Context) error { return dbErr })
	hs := newHarness(t, func(d *httpapi.RouterDeps) { d.Readiness = readiness })

	for _, path := range []string{"/livez", "/readyz"} {
		rec := hs.do(request{Method: "GET", Path: path})
		if rec.Code != 200 || decodeObject(t, rec)["status"] != "ok" {
			t.Fatalf("%s = %d %s", path, rec.Code, rec.Body.String())
		}
	}

	dbErr = fmt.Errorf("ping: %w", errSecret)
	rec := hs.do(request{Method: "GET", Path: "/readyz"})
	assertProblem(t, rec, 503, "unavailable")
	if strings.Contains(rec.Body.String(), "secret") || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("readyz failure: %v %s", rec.Header(), rec.Body.String())
	}
	if rec := hs.do(request{Method: "GET", Path: "/livez"}); rec.Code != 200 {
		t.Fatalf("livez must not check the database: %d", rec.Code)
	}

	dbErr = nil
	if rec := hs.do(request{Method: "GET", Path: "/readyz"}); rec.Code != 200 {
		t.Fatalf("readyz must recover with the database: %d", rec.Code)
	}
	readiness.SetShuttingDown()
	assertProblem(t, hs.do(request{Method: "GET", Path: "/readyz"}), 503, "unavailable")
	if rec := hs.do(request{Method: "GET", Path: "/livez"}); rec.Code != 200 {
		t.Fatalf("livez while shutting down = %d", rec.Code)
	}
}

func TestClientAddress(t *testing.T) {
	cases := []struct {
		name      string
		proxies   []string
		forwarded string
		want      string
	}{
		{"no trusted proxies ignores X-Forwarded-For", nil, "203.0.113.9", "192.0.2.1"},
		{"trusted proxy is believed", []string{"192.0.2.0/24"}, "203.0.113.9", "203.0.113.9"},
		{"untrusted proxy is not", []string{"10.0.0.0/8"}, "203.0.113.9", "192.0.2.1"},
		// An IPv6 client picks any address of its /64: the network is what is counted.
		{"IPv6 counts as its /64", []string{"192.0.2.0/24"}, "2001:db8:7:7:abcd::5", "2001:db8:7:7::/64"},
		{"IPv6 written otherwise, same /64", []string{"192.0.2.0/24"}, "2001:DB8:7:7:0:0:0:1", "2001:db8:7:7::/64"},
		{"IPv4 mapped into IPv6 is IPv4", []string{"192.0.2.0/24"}, "::ffff:203.0.113.9", "203.0.113.9"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t, func(d *httpapi.RouterDeps) { d.HTTP.TrustedProxies = tc.proxies })
			rec := hs.do(request{
				Method: "POST", Path: "/api/v1/auth/login", Body: `{"email":"a@x.io","password":"password1"}`,
				Header: map[string]string{"X-Forwarded-For": tc.forwarded},
			})
			if rec.Code != 200 {
				t.Fatalf("status = %d", rec.Code)
			}
			_, arg := hs.auth.last()
			in, ok := arg.(accounts.LoginInput)
			if !ok || in.ClientAddr != tc.want || in.Email != "a@x.io" || in.Password != "password1" {
				t.Fatalf("Login got %+v, want ClientAddr %q", arg, tc.want)
			}
		})
	}
	_, err := httpapi.NewRouter(httpapi.RouterDeps{
		HTTP: config.HTTP{TrustedProxies: []string{"not-an-address"}},
	})
	if err == nil || !strings.Contains(err.Error(), "APP_HTTP_TRUSTED_PROXIES") {
		t.Fatalf("invalid proxy setting: err = %v, want one naming APP_HTTP_TRUSTED_PROXIES", err)
	}
}

func TestAccessLog(t *testing.T) {
	hs := newHarness(t)
	rec := hs.do(request{
		Method: "POST", Path: "/api/v1/auth/logout", Token: userToken, Body: `{"refresh_token":"refresh-secret"}`,
		Header: map[string]string{"X-Request-ID": "log-me"},
	})
	if rec.Code != http.StatusNoContent {
		t.Fatalf("status = %d", rec.Code)
	}
	hs.do(request{Method: "POST", Path: "/api/v1/auth/login", Body: `{"email":"a@x.io","password":"hunter2-password"}`})
	logs := hs.logs.String()
	for _, want := range []string{`"route":"/api/v1/auth/logout"`, `"status":204`, `"request_id":"log-me"`, `"user_id":"u-alice"`, `"method":"POST"`, `"latency"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("access log lacks %s:\n%s", want, logs)
		}
	}
	for _, secret := range []string{userToken, "refresh-secret", "hunter2", "new-access", "new-refresh", "Authorization"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains %q:\n%s", secret, logs)
		}
	}
}

// TestAccessLogNamesUnmatchedRequests: a request no route matched is logged with the route
// "unmatched", the metrics' label for it, not an empty route and never the raw path.
func TestAccessLogNamesUnmatchedRequests(t *testing.T) {
	hs := newHarness(t)
	if rec := hs.do(request{Method: "GET", Path: "/no/such/path-that-a-client-chose"}); rec.Code != http.StatusNotFound {
		t.Fatalf("status = %d", rec.Code)
	}
	logs := hs.logs.String()
	if !strings.Contains(logs, `"route":"unmatched"`) || !strings.Contains(logs, `"status":404`) || strings.Contains(logs, "path-that-a-client-chose") {
		t.Errorf("the access log of an unmatched request:\n%s", logs)
	}
}

func TestCORS(t *testing.T) {
	hs := newHarness(t, func(d *httpapi.RouterDeps) { d.HTTP.CORSOrigins = []string{"https://app.example"} })
	rec := hs.do(request{Method: "OPTIONS", Path: "/api/v1/posts", Header: map[string]string{
		"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
	}})
	if rec.Code != http.StatusNoContent || rec.Header().Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(rec.Header().Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight = %d %v", rec.Code, rec.Header())
	}
	rec = hs.do(request{Method: "GET", Path: "/livez", Header: map[string]string{"Origin": "https://evil.example"}})
	if rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("an unlisted origin was allowed")
	}
	rec = hs.do(request{Method: "GET", Path: "/api/v1/posts", Token: userToken, Header: map[string]string{"Origin": "https://app.example"}})
	if rec.Header().Get("Access-Control-Allow-Origin") != "https://app.example" || !strings.Contains(rec.Header().Get("Access-Control-Expose-Headers"), "X-Cache") {
		t.Fatalf("simple request CORS headers: %v", rec.Header())
	}
}

// TestAccessLogHonoursTheLevel runs the router with its logger at warn, as the load runner
// does: answered requests below 500 write no line (the access log does not even build one),
// and a 5xx still does, with its route and status.
func TestAccessLogHonoursTheLevel(t *testing.T) {
	var logs strings.Builder
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e, err := httpapi.NewRouter(httpapi.RouterDeps{
		Logger:    logger,
		Readiness: httpapi.NewReadiness(func(context.Context) error { return errors.New("database down") }),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/livez", "/no/such/path", "/openapi.json"} {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code >= 500 {
			t.Fatalf("GET %s: status %d", path, rec.Code)
		}
	}
	if logs.Len() != 0 {
		t.Fatalf("below warn, lines were written:\n%s", logs.String())
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("GET /readyz: status %d, want 503", rec.Code)
	}
	for _, want := range []string{`"msg":"http request"`, `"level":"WARN"`, `"route":"/readyz"`, `"status":503`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the 5xx line lacks %s:\n%s", want, logs.String())
		}
	}
}
