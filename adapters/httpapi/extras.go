package httpapi

import "github.com/gin-gonic/gin"

// OpsRoute is an operational endpoint that the composition root adds to the router, such as
// GET /metrics, whose handler belongs to another adapter.
type OpsRoute struct {
	Method  string
	Path    string
	Handler gin.HandlerFunc
}

// RouterExtras is what the composition root adds to the contract's routes: middleware (for
// example, request metrics) and operational routes. The zero value adds nothing.
type RouterExtras struct {
	// Middleware runs on every request, after the router's own middleware (see
	// RouterDeps.Middleware).
	Middleware []gin.HandlerFunc
	// Routes are registered on the engine next to /livez and /readyz, behind the same
	// middleware.
	Routes []OpsRoute
}
