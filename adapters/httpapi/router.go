package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/wire"

	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/ports"
)

// ProviderSet builds the router for wire. The injector supplies the modules of the bounded
// contexts, the credential schemes (Authenticators), a ReadyFunc, a *slog.Logger, config.HTTP
// and RouterExtras; it gets back the *gin.Engine, the *Readiness whose SetShuttingDown the
// shutdown sequence calls and the *Connections its listeners count into.
var ProviderSet = wire.NewSet(NewReadiness, ProvideRouter, NewConnections)

// Authenticators are the credential schemes a request may present (session access tokens,
// personal API keys); a type of its own for wire.
type Authenticators []ports.Authenticator

// RouterDeps is everything the router needs.
type RouterDeps struct {
	// Modules register the routes of the bounded contexts under /api/v1.
	Modules []Module
	// Authenticators turn a bearer credential into the caller's principal; the first whose
	// Accepts says the credential is its kind verifies it.
	Authenticators []ports.Authenticator
	// Readiness answers /readyz; nil means always ready.
	Readiness *Readiness
	// Logger receives access lines and error reports; nil discards them.
	Logger *slog.Logger
	HTTP   config.HTTP
	// Middleware runs on every request after the request id, access log, recovery and
	// timeout middleware and before routing to a handler (for example, metrics).
	Middleware []gin.HandlerFunc
	// Routes are operational endpoints added by the composition root (GET /metrics).
	Routes []OpsRoute
}

// ProvideRouter is NewRouter with positional arguments, for wire. extras carries what the
// composition root adds (metrics middleware and GET /metrics).
func ProvideRouter(modules Modules, authenticators Authenticators, readiness *Readiness, logger *slog.Logger,
	cfg config.HTTP, extras RouterExtras,
) (*gin.Engine, error) {
	return NewRouter(RouterDeps{
		Modules: modules, Authenticators: authenticators, Readiness: readiness, Logger: logger, HTTP: cfg,
		Middleware: extras.Middleware, Routes: extras.Routes,
	})
}

// server is the kernel: what every request's handling shares. Modules reach it through the
// package's functions (Decode, Fail, WriteJSON, PrincipalOf), which find it in the request.
type server struct {
	authenticators []ports.Authenticator
	readiness      *Readiness
	log            *slog.Logger
	// bodies bounds the memory of request bodies being decoded (APP_HTTP_BODY_MEMORY).
	bodies *byteBudget
	// problems documents every problem code, the kernel's and the modules'.
	problems *problemRegistry
	// readTimeout is the server's APP_HTTP_READ_TIMEOUT (0: none), which ReadTimeFor moves.
	readTimeout time.Duration
	// writeTimeout is the server's APP_HTTP_WRITE_TIMEOUT (0: none), which SendTimeFor
	// extends for large answers.
	writeTimeout time.Duration
}

type serverKey struct{}

// kernelOf returns the kernel serving c. Outside the router (a handler called directly in a
// test) it returns a kernel with no credential schemes that logs nothing.
func kernelOf(c *gin.Context) *server {
	if v, ok := c.Get(serverKey{}); ok {
		if s, ok := v.(*server); ok {
			return s
		}
	}
	return &server{log: slog.New(slog.DiscardHandler), readiness: NewReadiness(nil), problems: newProblemRegistry()}
}

// NewRouter builds the HTTP API: every module's routes under /api/v1, the probes, the API
// documentation and the problem pages. It fails on an invalid trusted-proxy setting and on a
// module that registers a route twice or documents a problem code twice.
func NewRouter(deps RouterDeps) (*gin.Engine, error) {
	s := &server{
		authenticators: deps.Authenticators, readiness: deps.Readiness, log: deps.Logger, problems: newProblemRegistry(),
		readTimeout: deps.HTTP.ReadTimeout, writeTimeout: deps.HTTP.WriteTimeout,
	}
	if s.readiness == nil {
		s.readiness = NewReadiness(nil)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	bodyMemory := deps.HTTP.BodyMemory
	if bodyMemory <= 0 {
		bodyMemory = DefaultBodyMemory
	}
	s.bodies = newByteBudget(bodyMemory)

	var routes Routes
	for _, m := range deps.Modules {
		m.Register(&routes)
	}
	if err := s.problems.add(routes.problems...); err != nil {
		return nil, err
	}

	e := gin.New()
	// Redirects would be answered before any middleware runs (no X-Request-ID, no problem
	// document); an unknown path is a plain 404 problem instead.
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.HandleMethodNotAllowed = true
	// Routes match the path as sent: an encoded slash (%2F) stays within its segment instead
	// of splitting it, so /api/v1/admin%2Fusers is no route, as a proxy or firewall matching
	// the raw path sees it too. Parameters are decoded as before.
	e.UseRawPath = true
	e.UnescapePathValues = true
	e.ContextWithFallback = true
	// X-Forwarded-For is believed only from the configured proxies; with none, c.ClientIP()
	// is the connection's remote address.
	var proxies []string
	if len(deps.HTTP.TrustedProxies) > 0 {
		proxies = deps.HTTP.TrustedProxies
	}
	if err := e.SetTrustedProxies(proxies); err != nil {
		return nil, fmt.Errorf("%s: %w", config.EnvName("http.trusted_proxies"), err)
	}

	e.Use(func(c *gin.Context) { c.Set(serverKey{}, s) })
	e.Use(requestID(), closeUnreadBodies, securityHeaders, s.accessLog(), s.recovery(), releaseKeptBodies, timeout(deps.HTTP.RequestTimeout))
	if len(deps.HTTP.CORSOrigins) > 0 {
		e.Use(cors(deps.HTTP.CORSOrigins, routes.exposed))
	}
	e.Use(deps.Middleware...)
	// A query string that cannot be decoded is 400 on every route (decodableQuery): on a
	// module's routes after authentication, so that a caller without access learns only
	// that (401, or 403 on an admin route), whatever it sent; first on the others.
	// hints is filled once every route is registered (below).
	var hints pathHints
	e.NoRoute(decodableQuery, func(c *gin.Context) {
		detail := "There is no resource at this path."
		if meant := hints.hint(c.Request.URL.Path); meant != "" {
			detail = "There is no resource at this path. Did you mean " + meant + "? Paths take no trailing or repeated slashes."
		}
		writeProblem(c, newProblem(http.StatusNotFound, CodeNotFound, detail))
	})
	e.NoMethod(decodableQuery, func(c *gin.Context) {
		// gin has already set the Allow header.
		writeProblem(c, newProblem(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "This path does not support the method."))
	})

	// Every GET route is registered through getAndHead, so it answers HEAD too.
	getAndHead(e, "/livez", decodableQuery, s.livez)
	getAndHead(e, "/readyz", decodableQuery, s.readyz)
	getAndHead(e, "/openapi.json", decodableQuery, s.openAPIDocument)
	getAndHead(e, "/docs", decodableQuery, s.docsPage)
	getAndHead(e, "/docs/*asset", decodableQuery, s.docsAsset)
	getAndHead(e, "/problems/:code", decodableQuery, s.problemTypePage)

	v1 := e.Group(APIPrefix)
	seen := map[string]bool{}
	for _, r := range routes.routes {
		key := r.Method + " " + r.Path
		if seen[key] {
			return nil, fmt.Errorf("httpapi: route %s registered twice", key)
		}
		seen[key] = true
		handlers := []gin.HandlerFunc{s.routeSettings(r)}
		if r.Auth != Public {
			handlers = append(handlers, s.authenticate(r))
		}
		handlers = append(handlers, decodableQuery, r.Handler)
		if r.Method == http.MethodGet {
			getAndHead(v1, r.Path, handlers...)
			continue
		}
		v1.Handle(r.Method, r.Path, handlers...)
	}

	for _, r := range deps.Routes {
		if r.Method == http.MethodGet {
			getAndHead(e, r.Path, decodableQuery, r.Handler)
			continue
		}
		e.Handle(r.Method, r.Path, decodableQuery, r.Handler)
	}
	hints = newPathHints(e.Routes())
	return e, nil
}

// APIPrefix is the base path of every module's routes.
const APIPrefix = "/api/v1"

// routeSettings records the route's limits for the kernel's helpers and starts its own
// request timeout when it has one.
func (s *server) routeSettings(r Route) gin.HandlerFunc {
	rs := routeSettings{bodyLimit: r.BodyLimit, compressed: r.Compressed, stringLimits: r.StringLimits}
	return func(c *gin.Context) {
		c.Set(routeSettingsKey{}, rs)
		if r.Timeout > 0 {
			setRequestTimeout(c, r.Timeout)
		}
		c.Next()
	}
}

// getAndHead registers handlers for GET and for HEAD on path. RFC 9110 (section 9.3.2) asks
// every resource that answers GET to answer HEAD with the same status and headers and no
// body; the handlers need not know: net/http sends no body for HEAD and keeps the
// Content-Length the handler set or wrote. gin has no such fallback, and answered HEAD with
// 405. head_test.go fails on a GET route registered without its HEAD twin.
func getAndHead(r gin.IRoutes, path string, handlers ...gin.HandlerFunc) {
	r.GET(path, handlers...)
	r.HEAD(path, handlers...)
}

// livez answers while the process serves; it checks nothing external.
func (s *server) livez(c *gin.Context) {
	WriteJSON(c, http.StatusOK, statusResponse{Status: "ok"})
}

// readyz answers 200 when the database answers and 503 when it does not or while shutting
// down, so a load balancer sends traffic only where it can be served.
func (s *server) readyz(c *gin.Context) {
	err := s.readiness.Check(c.Request.Context())
	switch {
	case err == nil:
		WriteJSON(c, http.StatusOK, statusResponse{Status: "ok"})
	case errors.Is(err, ErrShuttingDown):
		s.unavailable(c, "The server is shutting down.")
	default:
		s.logAt(c, slog.LevelWarn, "readiness check failed", err)
		s.unavailable(c, "A dependency of the service is not reachable.")
	}
}
