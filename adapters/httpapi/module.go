package httpapi

import (
	"time"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/domain/identity"
)

// Module is one bounded context's HTTP adapter: it registers its routes, each with its own
// limits, and documents its problem codes. The kernel owns everything else (router assembly,
// middleware, request ids, authentication, decoding, the problem writer), so adding a context
// adds a module and one line in the composition root, never an edit here.
type Module interface {
	Register(r *Routes)
}

// Modules is the list the composition root hands the router (a type of its own for wire).
type Modules []Module

// Auth says what a route needs of its caller.
type Auth int

// The authentication modes of a route.
const (
	// Public routes take no credential and ignore one.
	Public Auth = iota
	// Optional routes serve anonymous callers and authenticated ones alike (public images),
	// but a credential that is presented must be valid: 401 otherwise.
	Optional
	// Required routes answer 401 without a valid credential.
	Required
)

// Route is one endpoint of a module.
type Route struct {
	Method string
	// Path is relative to /api/v1 ("/posts/:id").
	Path string
	Auth Auth
	// Content marks a route of a content context (posts, ECGs, images): a caller whose role
	// may hold no content (an admin) is answered 403 as soon as it is authenticated, before
	// the body or the parameters are looked at, so an admin never learns more from such a
	// route than that it is refused. Anonymous callers of Optional routes pass.
	Content bool
	// Admin marks a route of the administration: a caller who is not an admin is answered 403
	// as soon as it is authenticated, before the body or the parameters are looked at, so a
	// non-admin gets the same refusal whatever it sends (not a 400, 415, 413 or 422 that
	// depends on its input). The use case checks the role again.
	Admin bool
	// Credentials lists the credential kinds the route accepts; nil accepts every kind. A
	// valid credential of another kind is answered 403 (personal API keys may not manage
	// sessions or keys).
	Credentials []identity.CredentialKind
	// BodyLimit is the largest request body the route reads, in bytes, after decompression
	// for routes that accept compressed bodies; 0 means the route reads no body. Bigger bodies
	// are refused with 413 before they are read.
	BodyLimit int64
	// Compressed accepts request bodies sent with Content-Encoding: gzip; BodyLimit then bounds
	// the decompressed size as well, so a small gzip bomb is refused with 413. Other routes
	// answer a compressed body 415.
	Compressed bool
	// StringLimits bound the decoded size of top-level string members of the route's JSON
	// body (Decode): a body whose member passes its bound is answered with the limit's error
	// as soon as the bound is passed, without reading the rest. BodyLimit must admit the
	// largest valid value however it is escaped (six bytes of JSON for a byte of text), so
	// without them a value just over its bound is refused only once the whole body is read.
	StringLimits []StringLimit
	// Timeout bounds the request's own work (not the upload of its body); 0 means the
	// service's APP_HTTP_REQUEST_TIMEOUT.
	Timeout time.Duration
	// Handler answers the request. It reads the body with Decode, the caller with
	// PrincipalOf, and answers errors with Fail.
	Handler gin.HandlerFunc
}

// ProblemDoc documents one problem code a module's errors carry: the page GET
// /problems/{code} serves, and the title of its problem documents.
type ProblemDoc struct {
	Code    string
	Status  int
	Title   string
	Meaning string
	Action  string
}

// Routes collects what modules register.
type Routes struct {
	routes   []Route
	problems []ProblemDoc
	exposed  []string
}

// ExposeHeaders names response headers of the module that browsers on allowed CORS origins
// may read (X-Cache, say), beside the kernel's own.
func (r *Routes) ExposeHeaders(names ...string) { r.exposed = append(r.exposed, names...) }

// Handle adds a route. A GET route also answers HEAD.
func (r *Routes) Handle(route Route) { r.routes = append(r.routes, route) }

// Problems documents problem codes of the module's errors.
func (r *Routes) Problems(docs ...ProblemDoc) { r.problems = append(r.problems, docs...) }

// routeSettings is what a route's first handler records for the kernel's helpers.
type routeSettings struct {
	bodyLimit    int64
	compressed   bool
	stringLimits []StringLimit
}

type routeSettingsKey struct{}

// settingsOf returns the settings of the route being served.
func settingsOf(c *gin.Context) routeSettings {
	v, _ := c.Get(routeSettingsKey{})
	rs, _ := v.(routeSettings)
	return rs
}
