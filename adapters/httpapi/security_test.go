package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/adapters/accounts/accountshttp"
	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/adapters/posts/postshttp"
	"github.com/acme/postsvc/ports"
)

// withExtras adds a route that panics and one operational route, as the composition root
// adds GET /metrics.
func withExtras(d *httpapi.RouterDeps) {
	d.Routes = append(d.Routes,
		httpapi.OpsRoute{Method: "GET", Path: "/boom", Handler: func(*gin.Context) { panic("boom") }},
		httpapi.OpsRoute{Method: "GET", Path: "/metrics", Handler: func(c *gin.Context) { c.String(http.StatusOK, "up 1\n") }},
	)
}

func TestSecurityHeaders(t *testing.T) {
	hs := newHarness(t, withExtras)
	cases := []struct {
		name   string
		req    request
		status int
		csp    string
	}{
		{"probe", request{Method: "GET", Path: "/livez"}, 200, httpapi.APIContentSecurityPolicy},
		{"metrics", request{Method: "GET", Path: "/metrics"}, 200, httpapi.APIContentSecurityPolicy},
		{"document", request{Method: "GET", Path: "/openapi.json"}, 200, httpapi.APIContentSecurityPolicy},
		{"authenticated", request{Method: "GET", Path: "/api/v1/users/me", Token: userToken}, 200, httpapi.APIContentSecurityPolicy},
		{"refused", request{Method: "GET", Path: "/api/v1/users/me"}, 401, httpapi.APIContentSecurityPolicy},
		{"token", request{Method: "POST", Path: "/api/v1/auth/login", Body: `{"email":"a@x.io","password":"password1"}`}, 200, httpapi.APIContentSecurityPolicy},
		{"unknown path", request{Method: "GET", Path: "/nowhere"}, 404, httpapi.APIContentSecurityPolicy},
		{"wrong method", request{Method: "PUT", Path: "/livez"}, 405, httpapi.APIContentSecurityPolicy},
		{"panic", request{Method: "GET", Path: "/boom"}, 500, httpapi.APIContentSecurityPolicy},
		{"look-alike of docs", request{Method: "GET", Path: "/docsx"}, 404, httpapi.APIContentSecurityPolicy},
		{"docs page", request{Method: "GET", Path: "/docs"}, 200, httpapi.DocsContentSecurityPolicy},
		{"docs page with slash", request{Method: "GET", Path: "/docs/"}, 200, httpapi.DocsContentSecurityPolicy},
		{"docs asset", request{Method: "GET", Path: "/docs/swagger-ui.css"}, 200, httpapi.DocsContentSecurityPolicy},
		{"missing docs asset", request{Method: "GET", Path: "/docs/missing.js"}, 404, httpapi.DocsContentSecurityPolicy},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := hs.do(tc.req)
			if rec.Code != tc.status {
				t.Fatalf("status = %d, want %d: %s", rec.Code, tc.status, rec.Body.String())
			}
			h := rec.Header()
			want := map[string]string{
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "no-referrer",
				"Content-Security-Policy": tc.csp,
			}
			for k, v := range want {
				if got := h.Values(k); len(got) != 1 || got[0] != v {
					t.Errorf("%s = %q, want exactly %q", k, got, v)
				}
			}
		})
	}
}

// The two policies the brief asks for: nothing at all for API answers, and for the docs page
// exactly what Swagger UI needs from its own origin.
func TestContentSecurityPolicies(t *testing.T) {
	directives := func(p string) map[string]string {
		m := map[string]string{}
		for d := range strings.SplitSeq(p, ";") {
			name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
			m[name] = value
		}
		return m
	}
	api := directives(httpapi.APIContentSecurityPolicy)
	if api["default-src"] != "'none'" || api["frame-ancestors"] != "'none'" || len(api) != 2 {
		t.Errorf("API policy = %q", httpapi.APIContentSecurityPolicy)
	}
	docs := directives(httpapi.DocsContentSecurityPolicy)
	for name, value := range map[string]string{
		"default-src": "'none'", "frame-ancestors": "'none'", "script-src": "'self'",
		"style-src": "'self' 'unsafe-inline'", "img-src": "'self' data:", "connect-src": "'self'",
	} {
		if docs[name] != value {
			t.Errorf("docs policy %s = %q, want %q", name, docs[name], value)
		}
	}
	if strings.Contains(docs["script-src"], "unsafe") {
		t.Errorf("docs policy allows unsafe scripts: %q", docs["script-src"])
	}
}

// TestAuthenticatedResponsesAreNotStored walks every route of the router: each one behind the
// authentication middleware (it answers 401 without a token) must send Cache-Control:
// no-store with the refusal and with the answer to a valid token, whatever that answer is.
func TestAuthenticatedResponsesAreNotStored(t *testing.T) {
	hs := newHarness(t)
	e, err := httpapi.NewRouter(httpapi.RouterDeps{
		Modules:        []httpapi.Module{accountshttp.New(hs.auth, hs.admin, nil), postshttp.New(hs.posts)},
		Authenticators: []ports.Authenticator{hs.auth},
	})
	if err != nil {
		t.Fatal(err)
	}
	authed := 0
	for _, r := range e.Routes() {
		path := strings.NewReplacer(":id", "x-1", "*asset", "index.html").Replace(r.Path)
		anon := hs.do(request{Method: r.Method, Path: path})
		if anon.Code != http.StatusUnauthorized {
			continue
		}
		authed++
		if got := anon.Header().Get("Cache-Control"); got != "no-store" {
			t.Errorf("%s %s refused: Cache-Control = %q, want no-store", r.Method, r.Path, got)
		}
		for _, token := range []string{userToken, adminToken} {
			rec := hs.do(request{Method: r.Method, Path: path, Token: token, Body: "{}"})
			if got := rec.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("%s %s = %d: Cache-Control = %q, want no-store", r.Method, r.Path, rec.Code, got)
			}
		}
	}
	if authed < 10 {
		t.Fatalf("only %d authenticated routes found", authed)
	}
	// Token responses are private too.
	for _, path := range []string{"/api/v1/auth/signup", "/api/v1/auth/login"} {
		rec := hs.do(request{Method: "POST", Path: path, Body: `{"email":"a@x.io","password":"password1"}`})
		if rec.Code/100 != 2 || rec.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("POST %s = %d, Cache-Control %q", path, rec.Code, rec.Header().Get("Cache-Control"))
		}
	}
}

func TestCORSPolicy(t *testing.T) {
	const allowed = "https://app.example"
	preflight := func(hs *harness, origin, method, headers string) *httptest.ResponseRecorder {
		return hs.do(request{Method: "OPTIONS", Path: "/api/v1/posts/p-1", Header: map[string]string{
			"Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers,
		}})
	}
	corsHeaders := func(h http.Header) []string {
		var found []string
		for k := range h {
			if strings.HasPrefix(k, "Access-Control-") {
				found = append(found, k)
			}
		}
		return found
	}

	t.Run("allowed origin", func(t *testing.T) {
		hs := newHarness(t, func(d *httpapi.RouterDeps) { d.HTTP.CORSOrigins = []string{allowed, "https://other.example"} })
		for _, method := range []string{"GET", "POST", "PATCH", "DELETE"} {
			rec := preflight(hs, allowed, method, "authorization, content-type")
			h := rec.Header()
			if rec.Code != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != allowed ||
				!strings.Contains(h.Get("Access-Control-Allow-Methods"), method) ||
				!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") ||
				!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Content-Type") ||
				h.Get("Access-Control-Allow-Credentials") != "" || rec.Body.Len() != 0 {
				t.Fatalf("preflight %s = %d %v", method, rec.Code, h)
			}
			if !strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
				t.Fatalf("preflight without Vary: Origin: %v", h)
			}
		}
		rec := hs.do(request{Method: "DELETE", Path: "/api/v1/posts/p-1", Token: userToken, Header: map[string]string{"Origin": allowed}})
		if rec.Code != http.StatusNoContent || rec.Header().Get("Access-Control-Allow-Origin") != allowed ||
			!strings.Contains(rec.Header().Get("Access-Control-Expose-Headers"), "X-Request-ID") {
			t.Fatalf("actual request = %d %v", rec.Code, rec.Header())
		}
	})

	t.Run("allowed origin in other case", func(t *testing.T) {
		hs := newHarness(t, func(d *httpapi.RouterDeps) { d.HTTP.CORSOrigins = []string{"https://App.Example"} })
		for _, origin := range []string{allowed, "HTTPS://APP.EXAMPLE", "https://app.Example"} {
			rec := preflight(hs, origin, "POST", "authorization")
			if rec.Code != http.StatusNoContent || rec.Header().Get("Access-Control-Allow-Origin") != origin {
				t.Fatalf("preflight from %s = %d %v; want 204 allowing it", origin, rec.Code, rec.Header())
			}
		}
	})

	t.Run("disallowed origin", func(t *testing.T) {
		hs := newHarness(t, func(d *httpapi.RouterDeps) { d.HTTP.CORSOrigins = []string{allowed} })
		for _, origin := range []string{"https://evil.example", "https://app.example.evil.example", "http://app.example", "null"} {
			rec := preflight(hs, origin, "DELETE", "authorization")
			if found := corsHeaders(rec.Header()); len(found) != 0 || rec.Code == http.StatusNoContent {
				t.Fatalf("preflight from %s = %d with %v", origin, rec.Code, found)
			}
			rec = hs.do(request{Method: "GET", Path: "/api/v1/users/me", Token: userToken, Header: map[string]string{"Origin": origin}})
			if found := corsHeaders(rec.Header()); len(found) != 0 {
				t.Fatalf("request from %s carries %v", origin, found)
			}
			if !strings.Contains(strings.Join(rec.Header().Values("Vary"), ","), "Origin") {
				t.Fatalf("answer to %s without Vary: Origin", origin)
			}
		}
	})

	t.Run("none configured", func(t *testing.T) {
		hs := newHarness(t)
		rec := preflight(hs, allowed, "POST", "authorization")
		if found := corsHeaders(rec.Header()); len(found) != 0 || rec.Code == http.StatusNoContent {
			t.Fatalf("preflight with no origins configured = %d with %v", rec.Code, found)
		}
		rec = hs.do(request{Method: "GET", Path: "/livez", Header: map[string]string{"Origin": allowed}})
		if found := corsHeaders(rec.Header()); len(found) != 0 {
			t.Fatalf("CORS headers with no origins configured: %v", found)
		}
	})
}

// TestRouterExtras checks what the composition root adds: its middleware sees every request,
// matched or not, with the route template; its routes are served behind the router's own
// middleware.
func TestRouterExtras(t *testing.T) {
	var seen []string
	hs := newHarness(t, withExtras, func(d *httpapi.RouterDeps) {
		d.Middleware = append(d.Middleware, func(c *gin.Context) {
			c.Next()
			seen = append(seen, c.FullPath())
		})
	})
	rec := hs.do(request{Method: "GET", Path: "/metrics"})
	if rec.Code != http.StatusOK || rec.Body.String() != "up 1\n" || rec.Header().Get("X-Request-ID") == "" {
		t.Fatalf("GET /metrics = %d %v %q", rec.Code, rec.Header(), rec.Body.String())
	}
	hs.do(request{Method: "GET", Path: "/api/v1/posts/p-9", Token: userToken})
	hs.do(request{Method: "GET", Path: "/nowhere"})
	want := []string{"/metrics", "/api/v1/posts/:id", ""}
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Fatalf("middleware saw %q, want %q", seen, want)
	}
}
