package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// responseHook is called by (*server).do with every finished exchange: every response the
// suite receives from a documented operation is validated against the OpenAPI document the
// server itself serves, so the document cannot drift from what the binary answers.
// Requests to paths or methods the document does not name (deliberate 404s and 405s) are not
// checked here.
var responseHook = func(s *server, req *http.Request, r response) {
	spec, err := specOf(s.base)
	if err != nil {
		// The server may be stopping (shutdown tests); the tests of this file load the
		// document explicitly and fail when they cannot.
		return
	}
	if err := spec.validate(req, r); err != nil && !errors.Is(err, errUndocumented) {
		s.t.Errorf("%s %s: the response does not match openapi.json: %v\nbody: %s", req.Method, req.URL.Path, err, truncate(r.Body))
	}
}

func init() {
	// The documentation page's files are validated as text (their schemas are plain strings);
	// kin-openapi decodes only text/plain that way by default.
	for _, ct := range []string{"text/html", "text/css", "text/javascript"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder)
	}
	for _, ct := range []string{"image/png", "image/jpeg", "image/gif", "image/webp", "multipart/byteranges"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.FileBodyDecoder)
	}
}

// spec is a loaded OpenAPI document with a router over its operations.
type spec struct {
	doc    *openapi3.T
	router routers.Router
}

var (
	specMu     sync.Mutex
	loadedSpec *spec
)

// specOf returns the document served by the server at base, loaded once per test binary:
// every server runs the same binary, so they all serve the same document.
func specOf(base string) (*spec, error) {
	specMu.Lock()
	defer specMu.Unlock()
	if loadedSpec != nil {
		return loadedSpec, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/openapi.json", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		return nil, fmt.Errorf("GET /openapi.json: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	doc, err := openapi3.NewLoader().LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("load openapi.json: %w", err)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("openapi.json is not valid OpenAPI 3: %w", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route openapi.json: %w", err)
	}
	loadedSpec = &spec{doc: doc, router: router}
	return loadedSpec, nil
}

// mustSpec loads the document from s and fails the test when it cannot.
func mustSpec(t *testing.T, s *server) *spec {
	t.Helper()
	sp, err := specOf(s.base)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// errUndocumented marks a request whose path and method the document does not name.
var errUndocumented = errors.New("no documented operation for this request")

// validate checks a response against the operation the request maps to: its status must be
// documented, and its headers and body must match that response's schemas.
func (sp *spec) validate(req *http.Request, r response) error {
	route, params, err := sp.router.FindRoute(req)
	if err != nil {
		return fmt.Errorf("%w: %w", errUndocumented, err)
	}
	return openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 r.Status,
		Header:                 r.Header,
		Body:                   io.NopCloser(bytes.NewReader(r.Body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	})
}

// call sends a request through the harness (whose hook validates it too), then checks the
// status and that the exchange maps to a documented operation and matches it.
func (sp *spec) call(t *testing.T, s *server, method, path, token string, body any, status int) response {
	t.Helper()
	r := s.do(method, path, token, body)
	sp.check(t, method, s.base+path, r, status)
	return r
}

func (sp *spec) check(t *testing.T, method, url string, r response, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s %s: status %d, want %d: %s", method, url, r.Status, status, truncate(r.Body))
	}
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.validate(req, r); err != nil {
		t.Fatalf("%s %s (%d): %v\nbody: %s", method, url, r.Status, err, truncate(r.Body))
	}
}

// rawDo sends a request with an arbitrary content type, which (*server).do cannot.
func rawDo(t *testing.T, s *server, method, path, token, contentType, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// TestOpenAPIResponsesMatchTheDocument drives every operation of the contract, successes and
// representative errors, on both databases and validates each response against the schemas of
// its operation in the served document.
func TestOpenAPIResponsesMatchTheDocument(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			adminEmail := uniqueEmail("root")
			const adminPassword = "bootstrap admin password"
			s := startServer(t, b.env(t),
				"APP_BOOTSTRAP_ADMIN_EMAIL="+adminEmail,
				"APP_BOOTSTRAP_ADMIN_PASSWORD="+adminPassword,
				"APP_THROTTLE_ACCOUNT_FAILURES=2",
			)
			sp := mustSpec(t, s)
			call := func(method, path, token string, body any, status int) response {
				t.Helper()
				return sp.call(t, s, method, path, token, body, status)
			}

			// Operations and documentation.
			call("GET", "/livez", "", nil, 200)
			call("GET", "/readyz", "", nil, 200)
			call("GET", "/metrics", "", nil, 200)
			call("GET", "/openapi.json", "", nil, 200)
			call("GET", "/docs", "", nil, 200)
			expect(t, s.do("GET", "/docs/", "", nil), 200) // an alias of /docs that OpenAPI cannot name
			call("GET", "/docs/swagger-ui.css", "", nil, 200)
			call("GET", "/docs/no-such-file.js", "", nil, 404)

			// Accounts.
			email := uniqueEmail("spec")
			const password = "correct horse battery"
			signup := call("POST", "/api/v1/auth/signup", "", map[string]any{"email": email, "password": password, "name": "Spec"}, 201)
			refresh := signup.JSON(t)["refresh_token"].(string)
			call("POST", "/api/v1/auth/signup", "", map[string]any{"email": email, "password": password}, 409)
			call("POST", "/api/v1/auth/signup", "", map[string]any{"email": "not an address", "password": "short"}, 422)
			call("POST", "/api/v1/auth/signup", "", `{"email":`, 400)
			call("POST", "/api/v1/auth/signup", "", `{"email":7,"password":"correct horse battery"}`, 400)
			sp.check(t, "POST", s.base+"/api/v1/auth/signup", rawDo(t, s, "POST", "/api/v1/auth/signup", "", "text/plain", "email=a"), 415)

			call("POST", "/api/v1/auth/login", "", map[string]any{"email": email, "password": password}, 200)
			call("POST", "/api/v1/auth/login", "", map[string]any{"email": email, "password": "wrong password"}, 401)
			call("POST", "/api/v1/auth/login", "", map[string]any{"email": email, "password": "wrong password"}, 401)
			limited := call("POST", "/api/v1/auth/login", "", map[string]any{"email": email, "password": "wrong password"}, 429)
			if limited.Header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}

			rotated := call("POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": refresh}, 200)
			call("POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": "not-a-token"}, 401)
			token := rotated.JSON(t)["access_token"].(string)

			me := call("GET", "/api/v1/users/me", token, nil, 200)
			if me.JSON(t)["email"] != email {
				t.Fatalf("me: %s", me.Body)
			}
			call("GET", "/api/v1/users/me", "", nil, 401)
			call("GET", "/api/v1/users/me", "tampered.token.value", nil, 401)
			call("PATCH", "/api/v1/users/me", token, map[string]any{"name": "Spec Two"}, 200)
			call("PATCH", "/api/v1/users/me", token, map[string]any{"name": strings.Repeat("n", 101)}, 422)
			call("PATCH", "/api/v1/users/me", token, map[string]any{"name": nil}, 400)

			// Posts.
			created := call("POST", "/api/v1/posts", token, map[string]any{"text": "hello, spec"}, 201)
			postID := created.JSON(t)["id"].(string)
			if loc := created.Header.Get("Location"); loc != "/api/v1/posts/"+postID {
				t.Fatalf("Location = %q", loc)
			}
			call("POST", "/api/v1/posts", token, map[string]any{"text": "second"}, 201)
			call("POST", "/api/v1/posts", token, map[string]any{"text": ""}, 422)
			call("POST", "/api/v1/posts", token, map[string]any{"text": strings.Repeat("a", 1<<20+1)}, 413)
			call("POST", "/api/v1/posts", "", map[string]any{"text": "anonymous"}, 401)

			page := call("GET", "/api/v1/posts?limit=1", token, nil, 200)
			cursor, _ := page.JSON(t)["next_cursor"].(string)
			if cursor == "" {
				t.Fatalf("first page of two posts has no next_cursor: %s", page.Body)
			}
			last := call("GET", "/api/v1/posts?limit=1&cursor="+cursor, token, nil, 200)
			if last.JSON(t)["next_cursor"] != nil {
				t.Fatalf("the last page's next_cursor must be null: %s", last.Body)
			}
			call("GET", "/api/v1/posts", token, nil, 200)
			if hit := call("GET", "/api/v1/posts", token, nil, 200); hit.Header.Get("X-Cache") != "HIT" {
				t.Fatalf("X-Cache = %q on a repeated list", hit.Header.Get("X-Cache"))
			}
			call("GET", "/api/v1/posts?limit=0", token, nil, 422)
			call("GET", "/api/v1/posts?limit=101", token, nil, 422)
			call("GET", "/api/v1/posts?cursor=not-a-cursor", token, nil, 422)
			call("GET", "/api/v1/posts/"+postID, token, nil, 200)
			call("GET", "/api/v1/posts/missing", token, nil, 404)
			call("DELETE", "/api/v1/posts/"+postID, token, nil, 204)
			call("DELETE", "/api/v1/posts/"+postID, token, nil, 404)

			// Administration.
			call("GET", "/api/v1/admin/users", token, nil, 403)
			admin := call("POST", "/api/v1/auth/login", "", map[string]any{"email": adminEmail, "password": adminPassword}, 200)
			adminToken := admin.JSON(t)["access_token"].(string)
			adminID := admin.JSON(t)["user"].(map[string]any)["id"].(string)
			call("POST", "/api/v1/posts", adminToken, map[string]any{"text": "admins hold no content"}, 403)
			call("GET", "/api/v1/posts", adminToken, nil, 403)

			call("GET", "/api/v1/admin/users", adminToken, nil, 200)
			call("GET", "/api/v1/admin/users?q=SPEC&limit=1", adminToken, nil, 200)
			call("GET", "/api/v1/admin/users?limit=0", adminToken, nil, 422)
			newUser := call("POST", "/api/v1/admin/users", adminToken, map[string]any{
				"email": uniqueEmail("made"), "password": password, "name": "Made", "role": "user",
			}, 201)
			userID := newUser.JSON(t)["id"].(string)
			if loc := newUser.Header.Get("Location"); loc != "/api/v1/admin/users/"+userID {
				t.Fatalf("Location = %q", loc)
			}
			call("POST", "/api/v1/admin/users", adminToken, map[string]any{"email": email, "password": password}, 409)
			call("POST", "/api/v1/admin/users", adminToken, map[string]any{"email": uniqueEmail("bad"), "password": password, "role": "root"}, 422)
			call("GET", "/api/v1/admin/users/"+userID, adminToken, nil, 200)
			call("GET", "/api/v1/admin/users/missing", adminToken, nil, 404)
			call("PATCH", "/api/v1/admin/users/"+userID, adminToken, map[string]any{"name": "Renamed", "role": "admin"}, 200)
			call("PATCH", "/api/v1/admin/users/"+userID, adminToken, map[string]any{"role": "root"}, 422)
			call("PATCH", "/api/v1/admin/users/missing", adminToken, map[string]any{"name": "x"}, 404)
			call("DELETE", "/api/v1/admin/users/"+userID, adminToken, nil, 204)
			call("DELETE", "/api/v1/admin/users/"+userID, adminToken, nil, 404)
			call("PATCH", "/api/v1/admin/users/"+adminID, adminToken, map[string]any{"role": "user"}, 409)
			call("DELETE", "/api/v1/admin/users/"+adminID, adminToken, nil, 409)

			// Logout revokes the session.
			call("POST", "/api/v1/auth/logout", token, map[string]any{"refresh_token": "unusable"}, 204)
			call("GET", "/api/v1/users/me", token, nil, 401)
			call("POST", "/api/v1/auth/logout", token, nil, 401)
		})
	}
}

// TestOpenAPIOperationsAreServed checks the other direction on the real binary: every
// operation the document names is routed, including those whose handlers the composition
// root supplies (GET /metrics), which the package's own drift test cannot see.
func TestOpenAPIOperationsAreServed(t *testing.T) {
	s := startServer(t, backends()[0].env(t))
	sp := mustSpec(t, s)
	param := regexp.MustCompile(`\{[^}]+\}`)
	for path, item := range sp.doc.Paths.Map() {
		for method, op := range item.Operations() {
			// A path parameter with an example (a problem code) is filled with it, since only
			// a real value reaches a page there; the others with "x", which reaches the
			// handler and its own 404.
			url := path
			for _, p := range append(slices.Clone(item.Parameters), op.Parameters...) {
				if p.Value.In == openapi3.ParameterInPath && p.Value.Example != nil {
					url = strings.ReplaceAll(url, "{"+p.Value.Name+"}", fmt.Sprint(p.Value.Example))
				}
			}
			url = param.ReplaceAllString(url, "x")
			key := method + " " + path
			r := s.do(method, url, "", nil) // the hook validates the answer as well
			routerNotFound := r.Status == http.StatusNotFound && strings.Contains(string(r.Body), `"code":"not_found"`) && !strings.HasPrefix(path, "/docs/")
			if r.Status == http.StatusMethodNotAllowed || routerNotFound {
				t.Errorf("%s is documented but not served: %d %s", key, r.Status, truncate(r.Body))
			}
		}
	}
}
