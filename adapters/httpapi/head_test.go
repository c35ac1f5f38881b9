package httpapi_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/adapters/httpapi"
)

// withOperationalRoute adds a GET route the way the composition root adds GET /metrics.
func withOperationalRoute(d *httpapi.RouterDeps) {
	d.Routes = append(d.Routes, httpapi.OpsRoute{Method: http.MethodGet, Path: "/metrics", Handler: func(c *gin.Context) {
		c.String(http.StatusOK, "postsvc_up 1\n")
	}})
}

// routeParams turns a route template into a path that reaches its handler, and says which
// token to send. A route with a parameter not listed here fails the test, so a new route is
// not skipped silently.
var routeParam = regexp.MustCompile(`[:*][A-Za-z0-9_]+`)

func reachablePath(t *testing.T, template string) (string, string) {
	t.Helper()
	token := userToken
	if strings.HasPrefix(template, "/api/v1/admin/") {
		token = adminToken
	}
	values := map[string]string{
		"/api/v1/posts/:id":       "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
		"/api/v1/admin/users/:id": "u-alice",
		"/docs/*asset":            "docs.css",
		"/problems/:code":         "not_found",
	}
	if !routeParam.MatchString(template) {
		return template, token
	}
	v, ok := values[template]
	if !ok {
		t.Fatalf("route %s has a parameter: add a value for it to reachablePath", template)
	}
	return routeParam.ReplaceAllString(template, v), token
}

// TestEveryGETRouteAnswersHEAD: each GET route, the composition root's included, has a HEAD
// twin (RFC 9110, section 9.3.2).
func TestEveryGETRouteAnswersHEAD(t *testing.T) {
	hs := newHarness(t, withOperationalRoute)
	e, ok := hs.h.(*gin.Engine)
	if !ok {
		t.Fatalf("the router is a %T", hs.h)
	}
	var get, head []string
	for _, r := range e.Routes() {
		switch r.Method {
		case http.MethodGet:
			get = append(get, r.Path)
		case http.MethodHead:
			head = append(head, r.Path)
		}
	}
	slices.Sort(get)
	slices.Sort(head)
	if len(get) < 12 || !slices.Equal(get, head) {
		t.Fatalf("GET routes %v\nHEAD routes %v", get, head)
	}
}

// TestHEADAnswersLikeGET sends GET and HEAD to every GET route over a real connection: HEAD
// gets the same status and headers (Content-Length included) and no body. Error answers too:
// a HEAD without a token is the same 401.
func TestHEADAnswersLikeGET(t *testing.T) {
	hs := newHarness(t, withOperationalRoute)
	srv := httptest.NewServer(hs.h)
	defer srv.Close()
	e, _ := hs.h.(*gin.Engine)

	send := func(method, path, token string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(context.Background(), method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, body
	}
	checked := 0
	for _, r := range e.Routes() {
		if r.Method != http.MethodGet {
			continue
		}
		path, token := reachablePath(t, r.Path)
		tokens := []string{token}
		if strings.HasPrefix(path, "/api/") {
			tokens = append(tokens, "") // the 401 problem document
		}
		for _, tok := range tokens {
			get, getBody := send(http.MethodGet, path, tok)
			head, headBody := send(http.MethodHead, path, tok)
			if get.StatusCode == http.StatusMethodNotAllowed || get.StatusCode == http.StatusNotFound {
				t.Fatalf("GET %s = %d: reachablePath does not reach the handler", path, get.StatusCode)
			}
			if head.StatusCode != get.StatusCode {
				t.Errorf("HEAD %s = %d, GET = %d", path, head.StatusCode, get.StatusCode)
			}
			if len(headBody) != 0 {
				t.Errorf("HEAD %s has a body of %d bytes", path, len(headBody))
			}
			if cl := get.Header.Get("Content-Length"); cl != "" && head.Header.Get("Content-Length") != cl {
				t.Errorf("HEAD %s: Content-Length %q, GET's is %q (%d bytes)", path, head.Header.Get("Content-Length"), cl, len(getBody))
			}
			for name := range get.Header {
				if name == "Date" || name == http.CanonicalHeaderKey(httpapi.HeaderRequestID) {
					continue
				}
				if g, h := get.Header.Values(name), head.Header.Values(name); !slices.Equal(g, h) {
					t.Errorf("HEAD %s: %s = %q, GET's is %q", path, name, h, g)
				}
			}
			checked++
		}
	}
	if checked < 12 {
		t.Fatalf("checked %d answers", checked)
	}
}
