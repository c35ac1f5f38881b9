package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/cmd/server/wiring"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"
)

// registeredOutsideNewRouter lists documented operations whose handlers the composition root
// supplies (RouterDeps.Routes), so the router built here without them cannot show them. The end-to-end suite
// (test/e2e/openapi_test.go) checks that the real binary serves every documented operation,
// these included.
var registeredOutsideNewRouter = map[string]bool{
	"GET /metrics":  true,
	"HEAD /metrics": true,
}

// routesOnlyModules are every context's real module, as the composition root lists them, on
// use cases that are never called: enough to list routes and problem codes, so a context added
// there is checked against the document here without an edit.
func routesOnlyModules() []httpapi.Module { return wiring.RoutesOnly() }

// documentedCodes are the problem codes of the kernel and the modules, sorted.
func documentedCodes(t *testing.T) []string {
	t.Helper()
	docs, err := httpapi.DocumentedProblems(routesOnlyModules()...)
	if err != nil {
		t.Fatal(err)
	}
	codes := make([]string, 0, len(docs))
	for _, d := range docs {
		codes = append(codes, d.Code)
	}
	return codes
}

func gunzip(b []byte) ([]byte, error) {
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// routesOnlyEngine builds the real router with use cases that are never called: enough to
// list the routes and to serve the documentation endpoints.
func routesOnlyEngine(t *testing.T) *gin.Engine {
	t.Helper()
	e, err := httpapi.NewRouter(httpapi.RouterDeps{Modules: routesOnlyModules()})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// loadDocument parses and validates the document served at /openapi.json.
func loadDocument(t *testing.T) *openapi3.T {
	t.Helper()
	rec := serve(routesOnlyEngine(t), "GET", "/openapi.json", nil)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("GET /openapi.json = %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	doc, err := openapi3.NewLoader().LoadFromData(rec.Body.Bytes())
	if err != nil {
		t.Fatalf("the served document does not load: %v", err)
	}
	return doc
}

func serve(h http.Handler, method, path string, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// operationKeys lists the document's operations as "METHOD /path".
func operationKeys(doc *openapi3.T) []string {
	var keys []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			keys = append(keys, method+" "+path)
		}
	}
	slices.Sort(keys)
	return keys
}

var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc := loadDocument(t) // fails when openapi.yaml does not convert to JSON (a 500)
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the document is not valid OpenAPI 3: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi = %q, want 3.x", doc.OpenAPI)
	}
}

// TestOpenAPIMatchesRouter fails when the router has a route the document lacks, or the
// document names an operation the router does not serve.
func TestOpenAPIMatchesRouter(t *testing.T) {
	doc := loadDocument(t)
	documented := operationKeys(doc)

	var routed []string
	for _, r := range routesOnlyEngine(t).Routes() {
		// HEAD routes are documented too: the served document adds one beside every GET
		// (head_test.go checks that each GET route has its HEAD).
		routed = append(routed, r.Method+" "+ginParam.ReplaceAllString(r.Path, "{$1}"))
	}
	slices.Sort(routed)

	for _, key := range routed {
		if !slices.Contains(documented, key) {
			t.Errorf("route %s is missing from openapi.yaml", key)
		}
	}
	for _, key := range documented {
		if !slices.Contains(routed, key) && !registeredOutsideNewRouter[key] {
			t.Errorf("openapi.yaml documents %s, which the router does not serve", key)
		}
	}
	for key := range registeredOutsideNewRouter {
		if !slices.Contains(documented, key) {
			t.Errorf("%s is listed as registered outside NewRouter but is not documented", key)
		}
	}
}

// TestOpenAPIProblemCodes keeps the Problem schema's code enum equal to the codes the kernel
// and the modules document.
func TestOpenAPIProblemCodes(t *testing.T) {
	doc := loadDocument(t)
	var documented []string
	for _, v := range doc.Components.Schemas["Problem"].Value.Properties["code"].Value.Enum {
		documented = append(documented, v.(string))
	}
	slices.Sort(documented)
	codes := documentedCodes(t)
	if !slices.Equal(documented, codes) {
		t.Fatalf("Problem.code enum = %v\ndocumented codes   = %v", documented, codes)
	}
}

// TestOpenAPIConventions checks the rules of the contract that hold for whole families of
// operations, so a new operation cannot forget them.
func TestOpenAPIConventions(t *testing.T) {
	doc := loadDocument(t)
	scheme := doc.Components.SecuritySchemes["bearerAuth"]
	if scheme == nil || scheme.Value.Type != "http" || scheme.Value.Scheme != "bearer" || scheme.Value.BearerFormat != "JWT" {
		t.Fatalf("bearerAuth must be an http bearer (JWT) scheme: %+v", scheme)
	}
	ids := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			key := method + " " + path
			if op.OperationID == "" {
				t.Errorf("%s has no operationId", key)
			} else if other, dup := ids[op.OperationID]; dup {
				t.Errorf("%s and %s share operationId %q", key, other, op.OperationID)
			}
			ids[op.OperationID] = key
			if len(op.Tags) == 0 {
				t.Errorf("%s has no tag", key)
			}
			for status, ref := range op.Responses.Map() {
				if ref.Value.Headers["X-Request-ID"] == nil {
					t.Errorf("%s %s: every response carries X-Request-ID", key, status)
				}
				if (status == "429" || status == "503") && ref.Value.Headers["Retry-After"] == nil {
					t.Errorf("%s %s: must document Retry-After", key, status)
				}
				if status == "401" && ref.Value.Headers["WWW-Authenticate"] == nil {
					t.Errorf("%s 401: must document WWW-Authenticate", key)
				}
			}
			api := strings.HasPrefix(path, "/api/")
			// An operation without its own security requirement inherits the document's.
			security := doc.Security
			if op.Security != nil {
				security = *op.Security
			}
			bearer := len(security) > 0
			if api != bearer && !strings.HasPrefix(path, "/api/v1/auth/") {
				t.Errorf("%s: every API operation outside /auth needs bearerAuth, and only those", key)
			}
			var want []string
			if bearer {
				want = append(want, "401")
			}
			if api {
				want = append(want, "500", "503")
			}
			if op.RequestBody != nil {
				want = append(want, "400", "408", "413", "415")
			}
			if slices.ContainsFunc(op.Parameters, func(p *openapi3.ParameterRef) bool { return p.Value != nil && p.Value.In == "query" }) {
				// An undecodable query string is 400 (handlers read queries through queryParams).
				want = append(want, "400")
			}
			if strings.HasPrefix(path, "/api/v1/posts") || strings.HasPrefix(path, "/api/v1/admin/") {
				want = append(want, "403")
			}
			for _, status := range want {
				if op.Responses.Value(status) == nil {
					t.Errorf("%s: must document %s", key, status)
				}
			}
		}
	}
}

// TestOpenAPISecurityAndServers holds the document to the redocly rules no-empty-servers and
// security-defined without Node: a relative server (this service, on whatever address serves
// the document) and a document-wide bearer requirement, so an operation that does not say
// `security: []` is protected, never public by omission.
func TestOpenAPISecurityAndServers(t *testing.T) {
	doc := loadDocument(t)
	if len(doc.Servers) != 1 || doc.Servers[0].URL != "/" {
		t.Errorf("servers = %+v, want exactly one, the relative URL /", doc.Servers)
	}
	if len(doc.Security) != 1 || len(doc.Security[0]) != 1 || doc.Security[0]["bearerAuth"] == nil {
		t.Errorf("the document-wide security requirement must be bearerAuth alone: %+v", doc.Security)
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.Security != nil && len(*op.Security) == 0 && strings.HasPrefix(path, "/api/") && !strings.HasPrefix(path, "/api/v1/auth/") {
				t.Errorf("%s %s is documented as public", method, path)
			}
		}
	}
}

// TestOpenAPIClientErrors holds every operation to redocly's operation-4xx-response rule
// without Node: each documents at least one 4xx. None is exempt: every route, the probes
// included, answers 400 to a query string that cannot be decoded.
func TestOpenAPIClientErrors(t *testing.T) {
	doc := loadDocument(t)
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			has4xx := false
			for status := range op.Responses.Map() {
				has4xx = has4xx || strings.HasPrefix(status, "4")
			}
			if !has4xx {
				t.Errorf("%s %s documents no 4xx response", method, path)
			}
		}
	}
}

func TestDocsPage(t *testing.T) {
	e := routesOnlyEngine(t)
	script := regexp.MustCompile(`(?is)<script([^>]*)>(.*?)</script>`)
	ref := regexp.MustCompile(`(?:src|href)="(/[^"]*)"`)
	for _, path := range []string{"/docs", "/docs/", "/docs/index.html"} {
		rec := serve(e, "GET", path, nil)
		body := rec.Body.String()
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
			t.Fatalf("GET %s = %d %q", path, rec.Code, rec.Header().Get("Content-Type"))
		}
		if rec.Header().Get("Content-Security-Policy") != httpapi.DocsContentSecurityPolicy {
			t.Fatalf("GET %s: Content-Security-Policy = %q", path, rec.Header().Get("Content-Security-Policy"))
		}
		if !strings.Contains(body, `id="swagger-ui"`) {
			t.Fatalf("GET %s: no Swagger UI mount point", path)
		}
		if strings.Contains(body, "<style") || strings.Contains(body, " style=") || strings.Contains(body, "://") {
			t.Fatalf("GET %s: the page must have no inline style and load nothing from another origin", path)
		}
		for _, m := range script.FindAllStringSubmatch(body, -1) {
			if !strings.Contains(m[1], "src=") || strings.TrimSpace(m[2]) != "" {
				t.Fatalf("GET %s: inline script %q would need 'unsafe-inline'", path, m[0])
			}
		}
	}

	page := serve(e, "GET", "/docs", nil).Body.String()
	wantTypes := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".png": "image/png", ".json": "application/json; charset=utf-8"}
	refs := ref.FindAllStringSubmatch(page, -1)
	if len(refs) < 5 {
		t.Fatalf("the page references %d files, want its scripts, style sheets and icons", len(refs))
	}
	for _, m := range refs {
		path := m[1]
		ext := path[strings.LastIndex(path, "."):]
		plain := serve(e, "GET", path, nil)
		if plain.Code != http.StatusOK || plain.Header().Get("Content-Type") != wantTypes[ext] || plain.Body.Len() == 0 {
			t.Fatalf("GET %s = %d %q (%d bytes)", path, plain.Code, plain.Header().Get("Content-Type"), plain.Body.Len())
		}
		if plain.Header().Get("Content-Encoding") != "" {
			t.Fatalf("GET %s without Accept-Encoding was encoded", path)
		}
		if !strings.HasPrefix(path, "/docs/") {
			continue
		}
		etag := plain.Header().Get("ETag")
		if etag == "" {
			t.Fatalf("GET %s: no ETag", path)
		}
		if rec := serve(e, "GET", path, http.Header{"If-None-Match": {etag}}); rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
			t.Fatalf("GET %s with If-None-Match = %d, want 304", path, rec.Code)
		}
		zipped := serve(e, "GET", path, http.Header{"Accept-Encoding": {"gzip, deflate, br"}})
		if zipped.Header().Get("Content-Encoding") == "gzip" {
			unzipped, err := gunzip(zipped.Body.Bytes())
			if err != nil || string(unzipped) != plain.Body.String() {
				t.Fatalf("GET %s: the gzip body does not decompress to the plain one (%v)", path, err)
			}
		} else if strings.HasSuffix(path, "swagger-ui-bundle.js") {
			t.Fatalf("GET %s: the 1.5 MB bundle must be sent compressed to a client that accepts gzip", path)
		}
	}

	for _, path := range []string{"/docs/missing.js", "/docs/swagger-ui.js", "/docs/../openapi.yaml", "/docs/swaggerui/index.html"} {
		rec := serve(e, "GET", path, nil)
		if rec.Code != http.StatusNotFound || rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("GET %s = %d %q, want a 404 problem", path, rec.Code, rec.Header().Get("Content-Type"))
		}
	}
}

// TestOpenAPIHeadOperationsTwinTheirGETs: every GET operation of the served document has a HEAD
// beside it with the same parameters and security, the same statuses with the same headers,
// and no body in any of them.
func TestOpenAPIHeadOperationsTwinTheirGETs(t *testing.T) {
	doc := loadDocument(t)
	gets := 0
	for path, item := range doc.Paths.Map() {
		if item.Get == nil {
			if item.Head != nil {
				t.Errorf("HEAD %s has no GET", path)
			}
			continue
		}
		gets++
		get, head := item.Get, item.Head
		if head == nil {
			t.Errorf("GET %s has no HEAD", path)
			continue
		}
		if head.OperationID != get.OperationID+"Head" {
			t.Errorf("HEAD %s: operationId %q, want %q", path, head.OperationID, get.OperationID+"Head")
		}
		if len(head.Parameters) != len(get.Parameters) || !slices.Equal(head.Tags, get.Tags) ||
			(head.Security == nil) != (get.Security == nil) || head.Security != nil && len(*head.Security) != len(*get.Security) {
			t.Errorf("HEAD %s: parameters, tags or security differ from the GET's", path)
		}
		for status, resp := range get.Responses.Map() {
			h := head.Responses.Value(status)
			if h == nil || h.Value == nil {
				t.Errorf("HEAD %s: no %s response", path, status)
				continue
			}
			if len(h.Value.Content) != 0 {
				t.Errorf("HEAD %s %s: has a body", path, status)
			}
			if len(h.Value.Headers) != len(resp.Value.Headers) {
				t.Errorf("HEAD %s %s: %d headers, the GET has %d", path, status, len(h.Value.Headers), len(resp.Value.Headers))
			}
		}
		if head.Responses.Len() != get.Responses.Len() {
			t.Errorf("HEAD %s: %d responses, the GET has %d", path, head.Responses.Len(), get.Responses.Len())
		}
	}
	if gets < 20 {
		t.Fatalf("only %d GET operations in the document", gets)
	}
}
