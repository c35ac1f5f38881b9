package httpapi

import (
	"context"
	"errors"
	"sync/atomic"
)

// ReadyFunc reports whether the service's dependencies (the database) answer. It is a named
// type so that wire can inject it.
type ReadyFunc func(ctx context.Context) error

// ErrShuttingDown is what Readiness.Check returns once shutdown has begun.
var ErrShuttingDown = errors.New("server is shutting down")

// Readiness decides what GET /readyz answers: not ready while shutting down, otherwise
// whatever the dependency check says. It is safe for concurrent use.
type Readiness struct {
	check        ReadyFunc
	shuttingDown atomic.Bool
}

// NewReadiness wraps a dependency check. A nil check means the service is always ready
// (until SetShuttingDown).
func NewReadiness(check ReadyFunc) *Readiness {
	return &Readiness{check: check}
}

// SetShuttingDown makes /readyz answer 503 from now on, so a load balancer stops sending new
// requests while the ones in flight finish.
func (r *Readiness) SetShuttingDown() { r.shuttingDown.Store(true) }

// ShuttingDown reports whether SetShuttingDown was called.
func (r *Readiness) ShuttingDown() bool { return r.shuttingDown.Load() }

// Check returns nil when the service can take traffic.
func (r *Readiness) Check(ctx context.Context) error {
	if r.ShuttingDown() {
		return ErrShuttingDown
	}
	if r.check == nil {
		return nil
	}
	return r.check(ctx)
}
