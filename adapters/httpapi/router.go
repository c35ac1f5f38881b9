package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/wire"

	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/ports"
)

// ProviderSet builds the router for wire. The injector supplies the three use cases, a
// ReadyFunc, a *slog.Logger, config.HTTP and RouterExtras; it gets back the *gin.Engine and
// the *Readiness whose SetShuttingDown the shutdown sequence calls.
var ProviderSet = wire.NewSet(NewReadiness, ProvideRouter)

// RouterDeps is everything the router needs.
type RouterDeps struct {
	Auth  ports.AuthService
	Posts ports.PostService
	Admin ports.AdminService
	// Readiness answers /readyz; nil means always ready.
	Readiness *Readiness
	// Logger receives access lines and error reports; nil discards them.
	Logger *slog.Logger
	HTTP   config.HTTP
	// Middleware runs on every request after the request id, access log, recovery and
	// timeout middleware and before routing to a handler (for example, metrics).
	Middleware []gin.HandlerFunc
	// Routes are operational endpoints added by the composition root (GET /metrics).
	Routes []Route
}

// ProvideRouter is NewRouter with positional arguments, for wire. extras carries what the
// composition root adds (metrics middleware and GET /metrics).
func ProvideRouter(auth ports.AuthService, posts ports.PostService, admin ports.AdminService,
	readiness *Readiness, logger *slog.Logger, cfg config.HTTP, extras RouterExtras,
) (*gin.Engine, error) {
	return NewRouter(RouterDeps{
		Auth: auth, Posts: posts, Admin: admin, Readiness: readiness, Logger: logger, HTTP: cfg,
		Middleware: extras.Middleware, Routes: extras.Routes,
	})
}

// server holds the handlers' dependencies.
type server struct {
	auth      ports.AuthService
	posts     ports.PostService
	admin     ports.AdminService
	readiness *Readiness
	log       *slog.Logger
	// bodies bounds the memory of request bodies being decoded (APP_HTTP_BODY_MEMORY).
	bodies *byteBudget
}

// NewRouter builds the HTTP API: the routes of the contract under /api/v1 and the /livez and
// /readyz probes. It fails only on an invalid trusted-proxy setting.
func NewRouter(deps RouterDeps) (*gin.Engine, error) {
	if deps.Auth == nil || deps.Posts == nil || deps.Admin == nil {
		return nil, errors.New("httpapi: the auth, posts and admin use cases are required")
	}
	s := &server{auth: deps.Auth, posts: deps.Posts, admin: deps.Admin, readiness: deps.Readiness, log: deps.Logger}
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

	e := gin.New()
	// Redirects would be answered before any middleware runs (no X-Request-ID, no problem
	// document); an unknown path is a plain 404 problem instead.
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.HandleMethodNotAllowed = true
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

	e.Use(requestID(), securityHeaders, s.accessLog(), s.recovery(), timeout(deps.HTTP.RequestTimeout))
	if len(deps.HTTP.CORSOrigins) > 0 {
		e.Use(cors(deps.HTTP.CORSOrigins))
	}
	e.Use(deps.Middleware...)
	e.NoRoute(func(c *gin.Context) {
		writeProblem(c, newProblem(http.StatusNotFound, CodeNotFound, "There is no resource at this path."))
	})
	e.NoMethod(func(c *gin.Context) {
		// gin has already set the Allow header.
		writeProblem(c, newProblem(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "This path does not support the method."))
	})

	// Every GET route is registered through getAndHead, so it answers HEAD too.
	getAndHead(e, "/livez", s.livez)
	getAndHead(e, "/readyz", s.readyz)
	getAndHead(e, "/openapi.json", s.openAPIDocument)
	getAndHead(e, "/docs", s.docsPage)
	getAndHead(e, "/docs/*asset", s.docsAsset)
	getAndHead(e, "/problems/:code", s.problemTypePage)

	v1 := e.Group("/api/v1")
	v1.POST("/auth/signup", s.signup)
	v1.POST("/auth/login", s.login)
	v1.POST("/auth/refresh", s.refresh)

	authed := v1.Group("", s.authenticate)
	authed.POST("/auth/logout", s.logout)
	getAndHead(authed, "/users/me", s.me)
	authed.PATCH("/users/me", s.updateMe)

	authed.POST("/posts", s.addPost)
	getAndHead(authed, "/posts", s.listPosts)
	getAndHead(authed, "/posts/:id", s.getPost)
	authed.DELETE("/posts/:id", s.deletePost)

	getAndHead(authed, "/admin/users", s.listUsers)
	authed.POST("/admin/users", s.createUser)
	getAndHead(authed, "/admin/users/:id", s.getUser)
	authed.PATCH("/admin/users/:id", s.updateUser)
	authed.DELETE("/admin/users/:id", s.deleteUser)

	for _, r := range deps.Routes {
		if r.Method == http.MethodGet {
			getAndHead(e, r.Path, r.Handler)
			continue
		}
		e.Handle(r.Method, r.Path, r.Handler)
	}
	return e, nil
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
	s.writeJSON(c, http.StatusOK, statusResponse{Status: "ok"})
}

// readyz answers 200 when the database answers and 503 when it does not or while shutting
// down, so a load balancer sends traffic only where it can be served.
func (s *server) readyz(c *gin.Context) {
	err := s.readiness.Check(c.Request.Context())
	switch {
	case err == nil:
		s.writeJSON(c, http.StatusOK, statusResponse{Status: "ok"})
	case errors.Is(err, ErrShuttingDown):
		s.unavailable(c, "The server is shutting down.")
	default:
		s.logAt(c, slog.LevelWarn, "readiness check failed", err)
		s.unavailable(c, "A dependency of the service is not reachable.")
	}
}
