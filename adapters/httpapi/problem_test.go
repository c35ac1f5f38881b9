package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/accounts/session"
	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/domain/posts/post"
	"github.com/acme/postsvc/ports/accounts"
)

func TestErrorMapping(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		status int
		code   string
		header map[string]string
	}{
		{"validation", domain.Invalid("text", "must not be empty"), 422, "validation_failed", nil},
		{"payload too large", post.ErrTextTooLarge, 413, "payload_too_large", nil},
		{"email taken", user.ErrEmailTaken, 409, "email_taken", nil},
		{"invalid credentials", user.ErrInvalidCredentials, 401, "invalid_credentials", nil},
		{"invalid refresh token", session.ErrInvalidRefreshToken, 401, "invalid_refresh_token", nil},
		{"unauthenticated", domain.ErrUnauthenticated, 401, "unauthenticated",
			map[string]string{"WWW-Authenticate": `Bearer error="invalid_token"`}},
		{"forbidden", domain.ErrForbidden, 403, "forbidden", nil},
		{"post not found", post.ErrNotFound, 404, "post_not_found", nil},
		{"user not found", user.ErrNotFound, 404, "user_not_found", nil},
		{"last admin", user.ErrLastAdmin, 409, "last_admin", nil},
		{"throttled rounds up", &domain.ThrottledError{RetryAfter: 2500 * time.Millisecond}, 429, "too_many_attempts",
			map[string]string{"Retry-After": "3"}},
		{"throttled at least one second", &domain.ThrottledError{RetryAfter: time.Millisecond}, 429, "too_many_attempts",
			map[string]string{"Retry-After": "1"}},
		{"unavailable", fmt.Errorf("users.byID: %w: %w", domain.ErrUnavailable, errSecret), 503, "unavailable",
			map[string]string{"Retry-After": "5"}},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), 503, "unavailable",
			map[string]string{"Retry-After": "5"}},
		{"outage wins over a business error", errors.Join(user.ErrInvalidCredentials, domain.ErrUnavailable), 503, "unavailable", nil},
		{"unknown", errSecret, 500, "internal_error", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t)
			hs.posts.get = func(context.Context, string) (*post.Post, error) {
				return nil, fmt.Errorf("posts.get: %w", tc.err)
			}
			rec := hs.do(request{Method: "GET", Path: "/api/v1/posts/p-1", Token: userToken})
			p := assertProblem(t, rec, tc.status, tc.code)
			for k, v := range tc.header {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if tc.status == http.StatusUnauthorized && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer challenge: %q", rec.Header().Get("WWW-Authenticate"))
			}
			if strings.Contains(rec.Body.String(), "secret-driver-text") || strings.Contains(rec.Body.String(), "SQLSTATE") {
				t.Errorf("internal error text leaked: %s", rec.Body.String())
			}
			if tc.code == "validation_failed" {
				if len(p.Errors) != 1 || p.Errors[0].Field != "text" || p.Errors[0].Message != "must not be empty" {
					t.Errorf("errors = %+v, want the text field", p.Errors)
				}
			} else if p.Errors != nil {
				t.Errorf("errors present on a non-validation problem: %+v", p.Errors)
			}
		})
	}
}

func TestInternalErrorIsLoggedWithRequestID(t *testing.T) {
	hs := newHarness(t)
	hs.posts.get = func(context.Context, string) (*post.Post, error) { return nil, errSecret }
	rec := hs.do(request{Method: "GET", Path: "/api/v1/posts/p-1", Token: userToken, Header: map[string]string{"X-Request-ID": "req-500"}})
	p := assertProblem(t, rec, 500, "internal_error")
	if strings.Contains(p.Detail, "secret") {
		t.Fatalf("detail leaks the error: %q", p.Detail)
	}
	logs := hs.logs.String()
	if strings.Count(logs, "secret-driver-text") != 1 {
		t.Fatalf("the cause must be logged exactly once:\n%s", logs)
	}
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "secret-driver-text") && !strings.Contains(line, `"request_id":"req-500"`) {
			t.Fatalf("error logged without its request id: %s", line)
		}
	}
}

// TestClientGoneIsRecordedAs499: a request cancelled because its client went away is answered
// 503 (nobody reads it) and logged at info as 499, not at warn as a server error.
func TestClientGoneIsRecordedAs499(t *testing.T) {
	hs := newHarness(t)
	hs.posts.get = func(context.Context, string) (*post.Post, error) { return nil, fmt.Errorf("get: %w", context.Canceled) }
	rec := hs.do(request{Method: "GET", Path: "/api/v1/posts/p-1", Token: userToken, Header: map[string]string{"X-Request-ID": "req-gone"}})
	assertProblem(t, rec, 503, "unavailable")
	for _, line := range strings.Split(hs.logs.String(), "\n") {
		if !strings.Contains(line, `"msg":"http request"`) || !strings.Contains(line, "req-gone") {
			continue
		}
		if !strings.Contains(line, `"status":499`) || !strings.Contains(line, `"level":"INFO"`) {
			t.Fatalf("access log line of a client gone: %s, want status 499 at INFO", line)
		}
		return
	}
	t.Fatalf("no access log line for the request:\n%s", hs.logs.String())
}

func TestIDsErrorListsTheIDs(t *testing.T) {
	hs := newHarness(t)
	hs.posts.get = func(context.Context, string) (*post.Post, error) {
		return nil, fmt.Errorf("bulk: %w", domain.WithIDs(post.ErrNotFound, []string{"a", "b"}))
	}
	rec := hs.do(request{Method: "GET", Path: "/api/v1/posts/p-1", Token: userToken})
	p := assertProblem(t, rec, 404, "post_not_found")
	if strings.Join(p.IDs, ",") != "a,b" {
		t.Fatalf("ids = %q, want [a b]", p.IDs)
	}
	hs.posts.get = func(context.Context, string) (*post.Post, error) { return nil, post.ErrNotFound }
	other := assertProblem(t, hs.do(request{Method: "GET", Path: "/api/v1/posts/p-1", Token: userToken}), 404, "post_not_found")
	if other.IDs != nil {
		t.Fatalf("a failure without ids has ids %q", other.IDs)
	}
}

func TestValidationErrorListsEveryField(t *testing.T) {
	hs := newHarness(t)
	hs.auth.signup = func(in accounts.SignupInput) (accounts.AuthResult, error) {
		var v domain.Validator
		v.Check(domain.Invalid("email", "must be a valid email address"))
		v.Check(domain.Invalid("password", "must be at least 8 characters"))
		return accounts.AuthResult{}, v.Err()
	}
	rec := hs.do(request{Method: "POST", Path: "/api/v1/auth/signup", Body: `{"email":"x","password":"y"}`})
	p := assertProblem(t, rec, 422, "validation_failed")
	if len(p.Errors) != 2 || p.Errors[0].Field != "email" || p.Errors[1].Field != "password" {
		t.Fatalf("errors = %+v", p.Errors)
	}
}

func TestPanicBecomesProblem(t *testing.T) {
	hs := newHarness(t)
	hs.posts.get = func(context.Context, string) (*post.Post, error) { panic("boom: secret-panic-text") }
	rec := hs.do(request{Method: "GET", Path: "/api/v1/posts/p-1", Token: userToken})
	assertProblem(t, rec, 500, "internal_error")
	if strings.Contains(rec.Body.String(), "secret-panic-text") {
		t.Fatal("panic value leaked to the client")
	}
	if logs := hs.logs.String(); !strings.Contains(logs, "secret-panic-text") || !strings.Contains(logs, "stack") {
		t.Fatalf("panic not logged with its stack:\n%s", logs)
	}
}

func TestUnknownRouteAndMethod(t *testing.T) {
	hs := newHarness(t)
	for _, path := range []string{"/nope", "/api/v1/posts/", "/api/v2/posts", "/api/v1/posts/a/b"} {
		assertProblem(t, hs.do(request{Method: "GET", Path: path, Token: userToken}), 404, "not_found")
	}
	// A path that is a route but for its slashes names the route: clients slip there most.
	for path, meant := range map[string]string{
		"/api/v1/posts/":         "/api/v1/posts",
		"/api/v1//posts":         "/api/v1/posts",
		"/api/v1/posts/some-id/": "/api/v1/posts/some-id",
		"//api/v1/users/me//":    "/api/v1/users/me",
		"/api/v1/posts/a/b/":     "",
		"/nope/":                 "",
		"/api/v1/posts/" + "x/" + strings.Repeat("y", 3000): "",
	} {
		p := assertProblem(t, hs.do(request{Method: "GET", Path: path, Token: userToken}), 404, "not_found")
		detail := p.Detail
		if got := strings.Contains(detail, "Did you mean"); got != (meant != "") || (meant != "" && !strings.Contains(detail, " "+meant+"?")) {
			t.Errorf("GET %s: detail %q, want a hint naming %q (none when empty)", path, detail, meant)
		}
	}
	// An encoded slash is part of a segment, never a separator: a proxy or firewall rule on
	// /api/v1/admin/... must not be passed by writing /api/v1/admin%2Fusers.
	for _, c := range []struct{ path, token string }{
		{"/api/v1/admin%2Fusers", adminToken},
		{"/api/v1/admin%2fusers", adminToken},
		{"/api/v1/users%2Fme", userToken},
		{"/api%2Fv1/users/me", userToken},
	} {
		assertProblem(t, hs.do(request{Method: "GET", Path: c.path, Token: c.token}), 404, "not_found")
	}
	// Routes match the path as sent, so an escaped letter in a route's own segment is no
	// route either (a parameter's escapes are decoded: see TestPathParametersAreDecoded).
	if rec := hs.do(request{Method: "GET", Path: "/api/v1/users/m%65", Token: userToken}); rec.Code != 404 {
		t.Errorf("GET /api/v1/users/m%%65: %d, want 404", rec.Code)
	}
	rec := hs.do(request{Method: "PUT", Path: "/api/v1/posts", Token: userToken})
	assertProblem(t, rec, 405, "method_not_allowed")
	if allow := rec.Header().Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "POST") {
		t.Fatalf("Allow = %q", allow)
	}
}

// TestPathParametersAreDecoded: routes match the path as sent (an encoded slash stays within
// its segment), and a parameter is handed on decoded.
func TestPathParametersAreDecoded(t *testing.T) {
	hs := newHarness(t)
	if rec := hs.do(request{Method: "GET", Path: "/api/v1/admin/users/u%2Dalice", Token: adminToken}); rec.Code != 200 {
		t.Fatalf("GET /api/v1/admin/users/u%%2Dalice: %d %s, want 200 (the id u-alice, decoded)", rec.Code, rec.Body)
	}
	// An encoded slash is a character of the id, which no user has: the module's 404, not the
	// router's, and the handler was given it decoded.
	assertProblem(t, hs.do(request{Method: "GET", Path: "/api/v1/admin/users/u-alice%2Fx", Token: adminToken}), 404, "user_not_found")
	if name, arg := hs.admin.last(); name != "GetUser" || arg != "u-alice/x" {
		t.Fatalf("last call %s(%v), want GetUser(u-alice/x)", name, arg)
	}
}
