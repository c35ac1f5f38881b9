package main

import (
	"context"
	"fmt"
	"net"
	"net/http"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/config"
)

// listenOps opens the operations listener when APP_HTTP_OPS_ADDR is set, and returns nil
// otherwise. It runs before anything is served, so a taken or invalid address stops start-up
// with a message naming the setting instead of leaving an instance that cannot be scraped.
func (a *app) listenOps(ctx context.Context) (net.Listener, error) {
	addr := a.cfg.HTTP.OpsAddr
	if addr == "" {
		return nil, nil
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config.EnvName("http.ops_addr"), err)
	}
	return ln, nil
}

// opsHandler is what the operations listener serves: GET /metrics, which is then no route of
// the API, and the two probes. The probes are handed to the API's own router, so they answer
// exactly as they do on the API's address (the same readiness, shutdown state, request id and
// access log); the deployment's probes stay on the API's address, which they also check is
// serving. Every other path is a 404 and every other method of these paths a 405, as problem
// documents like the API's own: this listener is for operators' tools, not for API clients,
// and nothing of the API is reachable through it. Every answer carries X-Request-ID from the
// API's own request id middleware, as the contract asks of every response; the probes keep
// that same id.
func (a *app) opsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.scrape)
	mux.Handle("GET /livez", a.router)
	mux.Handle("GET /readyz", a.router)
	mux.HandleFunc("/", opsFallback)
	return httpapi.RequestID(mux)
}

// opsFallback answers what the operations listener does not serve: the mux hands it every
// request no GET pattern matched (its own 404s and 405s would be plain text).
func opsFallback(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	switch r.URL.Path {
	case "/metrics", "/livez", "/readyz":
		w.Header().Set("Allow", "GET, HEAD")
		httpapi.WriteProblem(w, http.StatusMethodNotAllowed, httpapi.CodeMethodNotAllowed, "This path does not support the method.")
	default:
		httpapi.WriteProblem(w, http.StatusNotFound, httpapi.CodeNotFound, "There is no resource at this path.")
	}
}
