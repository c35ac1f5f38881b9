package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/config"
)

// startProfiler serves the Go profiler on its own loopback listener when APP_HTTP_PPROF_ADDR
// is set (config refuses other addresses). It is a separate server, never a route of the API:
// profiles expose the process's internals and a CPU profile holds a request open for its
// whole duration. The returned function stops it; with the setting empty it does nothing.
func (a *app) startProfiler(ctx context.Context) (stop func(), err error) {
	addr := a.cfg.HTTP.PprofAddr
	if addr == "" {
		return func() {}, nil
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config.EnvName("http.pprof_addr"), err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// No write timeout: a CPU profile or trace answers after the seconds it was asked for.
	// Its answers carry X-Request-ID like those of every listener of the service.
	srv := &http.Server{Handler: httpapi.RequestID(mux), ReadHeaderTimeout: 5 * time.Second}
	guarded := httpapi.GuardRefusals(srv, ln, a.logger, nil)
	go func() {
		if err := srv.Serve(guarded); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.logger.Warn("profiler stopped", "error", err)
		}
	}()
	a.logger.Info("profiler serving", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}
