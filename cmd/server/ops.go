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
// serving. Every other path is a plain 404: this listener is for operators' tools, not for
// API clients, and nothing of the API is reachable through it. Every answer, the scrape's and
// the 404s and 405s of the mux included, carries X-Request-ID from the API's own request id
// middleware, as the contract asks of every response; the probes keep that same id.
func (a *app) opsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.scrape)
	mux.Handle("GET /livez", a.router)
	mux.Handle("GET /readyz", a.router)
	return httpapi.RequestID(mux)
}
