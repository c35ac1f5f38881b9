package httpapi_test

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/acme/postsvc/adapters/httpapi"
)

// TestEveryProblemCodeHasAPage fails for a code with a title and no page, or a page and no
// title, and checks each page says what it is about: title, code, status, meaning and advice.
func TestEveryProblemCodeHasAPage(t *testing.T) {
	docs, err := httpapi.DocumentedProblems(routesOnlyModules()...)
	if err != nil {
		t.Fatal(err)
	}
	e := routesOnlyEngine(t)
	for _, page := range docs {
		code := page.Code
		if page.Status < 400 || page.Status > 599 || page.Meaning == "" || page.Action == "" {
			t.Errorf("%s: incomplete page %+v", code, page)
		}
		rec := serve(e, http.MethodGet, httpapi.ProblemTypePrefix+code, nil)
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
			t.Fatalf("GET %s%s = %d %q", httpapi.ProblemTypePrefix, code, rec.Code, rec.Header().Get("Content-Type"))
		}
		if rec.Header().Get("Content-Security-Policy") != httpapi.APIContentSecurityPolicy || rec.Header().Get("X-Request-ID") == "" {
			t.Errorf("GET %s%s lacks the API's security headers or a request id", httpapi.ProblemTypePrefix, code)
		}
		body := html.UnescapeString(rec.Body.String())
		for _, want := range []string{page.Title, "<code>" + code + "</code>", strconv.Itoa(page.Status), page.Meaning, page.Action} {
			if !strings.Contains(body, want) {
				t.Errorf("the page of %s does not say %q", code, want)
			}
		}
		if strings.Contains(body, "://") {
			t.Errorf("the page of %s links to another site", code)
		}
	}
}

// TestProblemTypeLeadsToItsPage takes the type of real problem documents, resolves it against
// the request's URL as a client would, and follows it to a page about that very code.
func TestProblemTypeLeadsToItsPage(t *testing.T) {
	e := routesOnlyEngine(t)
	doc := loadDocument(t)
	typePattern := regexp.MustCompile(doc.Components.Schemas["Problem"].Value.Properties["type"].Value.Pattern)
	for _, tc := range []struct{ method, path, code string }{
		{http.MethodGet, "/no/such/path", httpapi.CodeNotFound},
		{http.MethodDelete, "/livez", httpapi.CodeMethodNotAllowed},
		{http.MethodGet, "/api/v1/users/me", httpapi.CodeUnauthenticated},
	} {
		requested, err := url.Parse("http://api.example.test" + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		rec := serve(e, tc.method, tc.path, nil)
		var p httpapi.Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Code != tc.code {
			t.Fatalf("%s %s: %d %s", tc.method, tc.path, rec.Code, rec.Body.String())
		}
		if !typePattern.MatchString(p.Type) {
			t.Errorf("type %q does not match the document's pattern %s", p.Type, typePattern)
		}
		ref, err := url.Parse(p.Type)
		if err != nil {
			t.Fatalf("type %q is not a URI reference: %v", p.Type, err)
		}
		target := requested.ResolveReference(ref)
		if target.Host != requested.Host {
			t.Errorf("type %q leads to %s, away from the service that answered", p.Type, target)
		}
		page := serve(e, http.MethodGet, target.RequestURI(), nil)
		if page.Code != http.StatusOK || !strings.Contains(page.Body.String(), "<code>"+tc.code+"</code>") {
			t.Errorf("type %q (%s) answers %d, not the page of %s", p.Type, target.RequestURI(), page.Code, tc.code)
		}
	}
	// Every code's type matches the documented pattern, not only those met above.
	for _, code := range documentedCodes(t) {
		if !typePattern.MatchString(httpapi.ProblemTypePrefix + code) {
			t.Errorf("the type of %s does not match the document's pattern %s", code, typePattern)
		}
	}
}

// TestUnknownProblemCodeIsNotFound checks that a code the service does not have is a 404
// problem, like any path with nothing at it.
func TestUnknownProblemCodeIsNotFound(t *testing.T) {
	e := routesOnlyEngine(t)
	for _, path := range []string{"/problems/no_such_code", "/problems/Validation_Failed", "/problems/%3Cscript%3E", "/problems/"} {
		rec := serve(e, http.MethodGet, path, nil)
		var p httpapi.Problem
		if rec.Code != http.StatusNotFound || rec.Header().Get("Content-Type") != "application/problem+json" ||
			json.Unmarshal(rec.Body.Bytes(), &p) != nil || p.Code != httpapi.CodeNotFound {
			t.Errorf("GET %s = %d %q %s, want a 404 not_found problem", path, rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
		}
	}
}
