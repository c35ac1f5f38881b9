package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
)

// scheme is a credential scheme for the kernel's tests: it takes credentials with its prefix
// and turns "<prefix><user>" into a principal of its kind.
type scheme struct {
	prefix string
	kind   identity.CredentialKind
}

func (s scheme) Accepts(credential string) bool { return strings.HasPrefix(credential, s.prefix) }

func (s scheme) Authenticate(_ context.Context, credential string) (identity.Principal, error) {
	uid := strings.TrimPrefix(credential, s.prefix)
	if uid == "" || uid == "revoked" {
		return identity.Principal{}, domain.ErrUnauthenticated
	}
	role := identity.RoleUser
	if strings.HasPrefix(uid, "admin") {
		role = identity.RoleAdmin
	}
	return identity.Principal{UserID: identity.UserID(uid), Role: role, Credential: identity.Credential{Kind: s.kind, ID: "c-" + uid}}, nil
}

// testModule registers one route of each kind the kernel supports.
type testModule struct{ routes []httpapi.Route }

func (m testModule) Register(r *httpapi.Routes) {
	for _, route := range m.routes {
		r.Handle(route)
	}
	r.ExposeHeaders("X-Test-Module")
	r.Problems(httpapi.ProblemDoc{Code: "thing_not_found", Status: http.StatusNotFound, Title: "Thing not found", Meaning: "No such thing.", Action: "Check the id."})
}

func whoAmI(c *gin.Context) {
	if p, ok := httpapi.PrincipalFrom(c); ok {
		c.String(http.StatusOK, "%s via %s", p.UserID, p.Credential.Kind)
		return
	}
	c.String(http.StatusOK, "anonymous")
}

var errThingNotFound = domain.NewError(domain.KindNotFound, "thing_not_found", "There is no such thing.")

func kernelRouter(t *testing.T, routes ...httpapi.Route) http.Handler {
	t.Helper()
	e, err := httpapi.NewRouter(httpapi.RouterDeps{
		Modules: []httpapi.Module{testModule{routes: routes}},
		Authenticators: []ports.Authenticator{
			scheme{prefix: "tok_", kind: identity.CredentialSession},
			scheme{prefix: "pat_", kind: identity.CredentialAPIKey},
		},
		HTTP: config.HTTP{RequestTimeout: 5 * time.Second, CORSOrigins: []string{"https://app.example"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func call(h http.Handler, method, path, token string, body io.Reader, header map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, body)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestRoutesDeclareTheirAuthentication: required routes refuse anonymous callers, optional
// ones serve them but refuse an invalid credential, public ones ignore credentials; every
// scheme yields a principal, and a route that takes only sessions refuses a key with 403.
func TestRoutesDeclareTheirAuthentication(t *testing.T) {
	h := kernelRouter(t,
		httpapi.Route{Method: http.MethodGet, Path: "/required", Auth: httpapi.Required, Handler: whoAmI},
		httpapi.Route{Method: http.MethodGet, Path: "/optional", Auth: httpapi.Optional, Handler: whoAmI},
		httpapi.Route{Method: http.MethodGet, Path: "/public", Handler: whoAmI},
		httpapi.Route{Method: http.MethodGet, Path: "/sessions-only", Auth: httpapi.Required,
			Credentials: []identity.CredentialKind{identity.CredentialSession}, Handler: whoAmI},
	)
	for _, c := range []struct {
		path, token string
		status      int
		body        string
	}{
		{"/required", "", 401, ""},
		{"/required", "tok_alice", 200, "alice via session"},
		{"/required", "pat_alice", 200, "alice via api_key"},
		{"/required", "tok_revoked", 401, ""},
		{"/required", "neither-scheme", 401, ""},
		{"/optional", "", 200, "anonymous"},
		{"/optional", "pat_bob", 200, "bob via api_key"},
		{"/optional", "tok_revoked", 401, ""},
		{"/public", "tok_revoked", 200, "anonymous"},
		{"/sessions-only", "tok_carol", 200, "carol via session"},
		{"/sessions-only", "pat_carol", 403, ""},
	} {
		rec := call(h, http.MethodGet, "/api/v1"+c.path, c.token, nil, nil)
		if rec.Code != c.status || (c.body != "" && rec.Body.String() != c.body) {
			t.Errorf("GET %s with %q = %d %q, want %d %q", c.path, c.token, rec.Code, rec.Body.String(), c.status, c.body)
		}
		if c.path != "/public" && rec.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s: a response that may hold one user's data must be no-store", c.path)
		}
	}
}

// TestAdminRoutesRefuseOthersBeforeTheirInput: a route marked Admin answers a caller who is
// not an admin 403 forbidden whatever it sends (a malformed or oversized body, the wrong
// content type, a bad query), without running the handler, and serves an admin. Before, the
// role was checked by the use case only, after the handler had decoded the input, so a user
// got 400, 413, 415 or 422 or 403 depending on what it sent.
func TestAdminRoutesRefuseOthersBeforeTheirInput(t *testing.T) {
	var ran atomic.Int32
	handler := func(c *gin.Context) {
		ran.Add(1)
		var body struct {
			Name string `json:"name"`
		}
		if c.Request.Method == http.MethodPost && !httpapi.Decode(c, &body) {
			return
		}
		if _, _, ok := httpapi.PageQuery(c); !ok {
			return
		}
		c.String(http.StatusOK, "served")
	}
	h := kernelRouter(t,
		httpapi.Route{Method: http.MethodGet, Path: "/things", Auth: httpapi.Required, Admin: true, Handler: handler},
		httpapi.Route{Method: http.MethodPost, Path: "/things", Auth: httpapi.Required, Admin: true, BodyLimit: 64, Handler: handler},
	)
	json := map[string]string{"Content-Type": "application/json"}
	for _, c := range []struct {
		name, method, path, body string
		header                   map[string]string
	}{
		{"a good request", http.MethodPost, "/things", `{"name":"x"}`, json},
		{"malformed JSON", http.MethodPost, "/things", `{"name":`, json},
		{"the wrong type", http.MethodPost, "/things", `{"name":5}`, json},
		{"an oversized body", http.MethodPost, "/things", `{"name":"` + strings.Repeat("x", 100) + `"}`, json},
		{"the wrong content type", http.MethodPost, "/things", `{"name":"x"}`, map[string]string{"Content-Type": "text/plain"}},
		{"a bad limit", http.MethodGet, "/things?limit=0", "", nil},
		{"a repeated parameter", http.MethodGet, "/things?limit=1&limit=2", "", nil},
	} {
		for _, token := range []string{"tok_alice", "pat_alice"} {
			rec := call(h, c.method, "/api/v1"+c.path, token, strings.NewReader(c.body), c.header)
			assertProblem(t, rec, http.StatusForbidden, "forbidden")
		}
	}
	if n := ran.Load(); n != 0 {
		t.Fatalf("the handler ran %d times for callers who are not admins", n)
	}
	for _, token := range []string{"tok_admin", "pat_admin"} {
		if rec := call(h, http.MethodGet, "/api/v1/things", token, nil, nil); rec.Code != http.StatusOK {
			t.Errorf("an admin (%s) was refused: %d %s", token, rec.Code, rec.Body)
		}
		assertProblem(t, call(h, http.MethodGet, "/api/v1/things?limit=0", token, nil, nil), http.StatusUnprocessableEntity, "validation_failed")
	}
	assertProblem(t, call(h, http.MethodGet, "/api/v1/things", "", nil, nil), http.StatusUnauthorized, "unauthenticated")
}

// TestModulesErrorsAreAnsweredByKind: a module's own error reaches the client with its code,
// its message and the status of its kind, and its documented title.
func TestModulesErrorsAreAnsweredByKind(t *testing.T) {
	h := kernelRouter(t, httpapi.Route{Method: http.MethodGet, Path: "/things/:id", Handler: func(c *gin.Context) {
		httpapi.Fail(c, errThingNotFound)
	}})
	rec := call(h, http.MethodGet, "/api/v1/things/1", "", nil, nil)
	p := assertProblem(t, rec, http.StatusNotFound, "thing_not_found")
	if p.Title != "Thing not found" || p.Detail != "There is no such thing." {
		t.Fatalf("problem = %+v", p)
	}
	if page := call(h, http.MethodGet, "/problems/thing_not_found", "", nil, nil); page.Code != http.StatusOK {
		t.Fatalf("the module's problem page = %d", page.Code)
	}
}

// TestRouteTimeout: a route that declares its own timeout gets it, instead of the service's.
func TestRouteTimeout(t *testing.T) {
	h := kernelRouter(t, httpapi.Route{Method: http.MethodGet, Path: "/slow", Timeout: 50 * time.Millisecond, Handler: func(c *gin.Context) {
		<-c.Request.Context().Done()
		httpapi.Fail(c, c.Request.Context().Err())
	}})
	start := time.Now()
	rec := call(h, http.MethodGet, "/api/v1/slow", "", nil, nil)
	assertProblem(t, rec, http.StatusServiceUnavailable, "unavailable")
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the route's 50 ms timeout took %s: the service's 5 s applied", d)
	}
}

// TestStreamBodiesAndMultipart: a streamed body is cut at the route's limit (413), a
// multipart body is read part by part, gzip is accepted only where the route says so, and a
// small gzip bomb is refused once it decompresses past the limit.
func TestStreamBodiesAndMultipart(t *testing.T) {
	stream := func(c *gin.Context) {
		body, ok := httpapi.StreamBody(c)
		if !ok {
			return
		}
		n, err := io.Copy(io.Discard, body)
		if err != nil {
			httpapi.BodyError(c, err)
			return
		}
		c.String(http.StatusOK, "%d", n)
	}
	parts := func(c *gin.Context) {
		mr, release, ok := httpapi.Multipart(c)
		if !ok {
			return
		}
		defer release()
		var names []string
		for {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				httpapi.BodyError(c, err)
				return
			}
			data, err := io.ReadAll(p)
			if err != nil {
				httpapi.BodyError(c, err)
				return
			}
			names = append(names, p.FormName()+"="+string(data))
		}
		c.String(http.StatusOK, "%s", strings.Join(names, ","))
	}
	h := kernelRouter(t,
		httpapi.Route{Method: http.MethodPost, Path: "/stream", BodyLimit: 1000, Handler: stream},
		httpapi.Route{Method: http.MethodPost, Path: "/gzip", BodyLimit: 1000, Compressed: true, Handler: stream},
		httpapi.Route{Method: http.MethodPost, Path: "/parts", BodyLimit: 1000, Handler: parts},
	)
	chunked := func(s string) io.Reader { return io.MultiReader(strings.NewReader(s)) } // no Content-Length
	if rec := call(h, http.MethodPost, "/api/v1/stream", "", chunked(strings.Repeat("a", 1000)), nil); rec.Code != 200 || rec.Body.String() != "1000" {
		t.Fatalf("a body at the limit = %d %s", rec.Code, rec.Body.String())
	}
	assertProblem(t, call(h, http.MethodPost, "/api/v1/stream", "", chunked(strings.Repeat("a", 1001)), nil), 413, "payload_too_large")
	assertProblem(t, call(h, http.MethodPost, "/api/v1/stream", "", bytes.NewReader(make([]byte, 2000)), nil), 413, "payload_too_large")

	zip := func(n int) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(bytes.Repeat([]byte{'z'}, n))
		_ = zw.Close()
		return buf.Bytes()
	}
	gz := map[string]string{"Content-Encoding": "gzip"}
	if rec := call(h, http.MethodPost, "/api/v1/gzip", "", bytes.NewReader(zip(900)), gz); rec.Code != 200 || rec.Body.String() != "900" {
		t.Fatalf("a gzip body within the limit = %d %s", rec.Code, rec.Body.String())
	}
	// A bomb: 256 KiB that compresses to a few hundred bytes, within the limit as sent.
	bomb := zip(256 << 10)
	if len(bomb) >= 1000 {
		t.Fatalf("the bomb is %d bytes compressed; it must pass the limit as sent", len(bomb))
	}
	assertProblem(t, call(h, http.MethodPost, "/api/v1/gzip", "", bytes.NewReader(bomb), gz), 413, "payload_too_large")
	assertProblem(t, call(h, http.MethodPost, "/api/v1/gzip", "", bytes.NewReader(zip(1001)), gz), 413, "payload_too_large")
	assertProblem(t, call(h, http.MethodPost, "/api/v1/gzip", "", strings.NewReader("not gzip at all"), gz), 400, "malformed_request")
	assertProblem(t, call(h, http.MethodPost, "/api/v1/stream", "", bytes.NewReader(zip(10)), gz), 415, "unsupported_media_type")
	// Content-Encoding is one list however many lines carry it (RFC 9110 section 5.3):
	// identity changes nothing, and a second gzip is not undone as if it were one.
	for _, lines := range [][]string{{"GZIP"}, {"identity, gzip"}, {"gzip, identity"}, {"identity", "gzip"}} {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/gzip", bytes.NewReader(zip(5)))
		req.Header["Content-Encoding"] = lines
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 || rec.Body.String() != "5" {
			t.Fatalf("Content-Encoding %q = %d %s, want the body decompressed once", lines, rec.Code, rec.Body.String())
		}
	}
	for _, lines := range [][]string{{"gzip", "gzip"}, {"gzip, gzip"}, {"gzip", "br"}} {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/gzip", bytes.NewReader(zip(5)))
		req.Header["Content-Encoding"] = lines
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if p := assertProblem(t, rec, 415, "unsupported_media_type"); !strings.Contains(p.Detail, "2 codings") {
			t.Fatalf("Content-Encoding %q: detail %q, want it to say how many codings were sent", lines, p.Detail)
		}
	}

	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	_ = mw.WriteField("visibility", "public")
	fw, _ := mw.CreateFormFile("file", "a.png")
	_, _ = fw.Write([]byte("png bytes"))
	_ = mw.Close()
	rec := call(h, http.MethodPost, "/api/v1/parts", "", bytes.NewReader(form.Bytes()), map[string]string{"Content-Type": mw.FormDataContentType()})
	if rec.Code != 200 || rec.Body.String() != "visibility=public,file=png bytes" {
		t.Fatalf("multipart = %d %s", rec.Code, rec.Body.String())
	}
	assertProblem(t, call(h, http.MethodPost, "/api/v1/parts", "", strings.NewReader("x"), map[string]string{"Content-Type": "application/json"}), 415, "unsupported_media_type")
}

// TestModulesCannotCollide: two routes of one method and path, or one problem code documented
// twice, stop the router from being built.
func TestModulesCannotCollide(t *testing.T) {
	route := httpapi.Route{Method: http.MethodGet, Path: "/x", Handler: whoAmI}
	if _, err := httpapi.NewRouter(httpapi.RouterDeps{Modules: []httpapi.Module{testModule{routes: []httpapi.Route{route, route}}}}); err == nil {
		t.Fatal("a route registered twice was accepted")
	}
	if _, err := httpapi.NewRouter(httpapi.RouterDeps{Modules: []httpapi.Module{testModule{}, testModule{}}}); err == nil {
		t.Fatal("a problem code documented twice was accepted")
	}
}

// TestModulesExposeTheirHeaders: a module's response headers are readable by browsers on the
// allowed origins.
func TestModulesExposeTheirHeaders(t *testing.T) {
	h := kernelRouter(t, httpapi.Route{Method: http.MethodGet, Path: "/public", Handler: whoAmI})
	rec := call(h, http.MethodGet, "/api/v1/public", "", nil, map[string]string{"Origin": "https://app.example"})
	if !strings.Contains(rec.Header().Get("Access-Control-Expose-Headers"), "X-Test-Module") {
		t.Fatalf("exposed headers %q", rec.Header().Get("Access-Control-Expose-Headers"))
	}
}

// readSizes records the largest read asked of a body.
type readSizes struct {
	r       io.Reader
	largest int
}

func (s *readSizes) Read(p []byte) (int, error) {
	s.largest = max(s.largest, len(p))
	return s.r.Read(p)
}

// TestMultipartReadsTheBodyInLargeChunks: a multipart body is read from the connection 64 KiB
// at a time, not through the multipart reader's own 4 KiB buffer (a 1 MiB upload was 256
// read(2) calls).
func TestMultipartReadsTheBodyInLargeChunks(t *testing.T) {
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	fw, _ := mw.CreateFormFile("file", "big.bin")
	_, _ = fw.Write(bytes.Repeat([]byte("0123456789abcdef"), 1<<16)) // 1 MiB
	_ = mw.Close()
	var got int64
	h := kernelRouter(t, httpapi.Route{Method: http.MethodPost, Path: "/parts", BodyLimit: 4 << 20, Handler: func(c *gin.Context) {
		mr, release, ok := httpapi.Multipart(c)
		if !ok {
			return
		}
		defer release()
		p, err := mr.NextPart()
		if err != nil {
			httpapi.BodyError(c, err)
			return
		}
		if got, err = io.Copy(io.Discard, p); err != nil {
			httpapi.BodyError(c, err)
			return
		}
		c.Status(http.StatusNoContent)
	}})
	body := &readSizes{r: bytes.NewReader(form.Bytes())}
	rec := call(h, http.MethodPost, "/api/v1/parts", "", body, map[string]string{"Content-Type": mw.FormDataContentType()})
	if rec.Code != http.StatusNoContent || got != 1<<20 {
		t.Fatalf("upload = %d %s, %d bytes read from the part", rec.Code, rec.Body.String(), got)
	}
	if body.largest < 32<<10 {
		t.Fatalf("the body was read at most %d bytes at a time, want the 64 KiB buffer", body.largest)
	}
}
