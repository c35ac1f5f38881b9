package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/adapters/supervisor"
	"github.com/acme/postsvc/cmd/server/wiring"
	"github.com/acme/postsvc/config"
)

// app is what serving uses of the wired server (wiring.NewServer).
type app struct {
	cfg       *config.Config
	logger    *slog.Logger
	router    http.Handler
	scrape    http.Handler
	readiness *httpapi.Readiness
	srv       *wiring.Server
}

func newApp(s *wiring.Server) *app {
	return &app{cfg: s.Config, logger: s.Logger, router: s.Router, scrape: s.Scrape, readiness: s.Readiness, srv: s}
}

// bootstrapAdmin creates the configured first admin when the service has no admin yet (the
// admin use case decides); without the settings it does nothing.
func (a *app) bootstrapAdmin(ctx context.Context) error {
	b := a.cfg.Bootstrap
	if b.AdminEmail == "" {
		return nil
	}
	u, created, err := a.srv.Admin.Bootstrap(ctx, b.AdminEmail, b.AdminPassword)
	switch {
	case err != nil:
		return fmt.Errorf("bootstrap admin (%s): %w", config.EnvName("bootstrap.admin_email"), err)
	case created:
		a.logger.Info("bootstrap admin created", "user_id", u.ID())
	default:
		a.logger.Debug("bootstrap admin settings ignored: an admin exists or the email is taken")
	}
	return nil
}

// runServe migrates (unless switched off), creates the bootstrap admin, then runs the HTTP
// server and the background job workers under one supervisor until SIGINT or SIGTERM. The
// server stops being ready, keeps serving for the shutdown delay, and lets in-flight requests
// finish within the grace period; the workers stop claiming at once, let running jobs finish
// within theirs and hand the rest back. A worker failure is logged and the worker restarted;
// the HTTP server's failure ends the process, since its listener cannot be reopened. The
// last uses of personal API keys are written once the HTTP server has stopped, and the
// database closes after that.
func runServe(cmd *cobra.Command, _ []string) error {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, cmd.ErrOrStderr())
	// With SQLite the server is one process with its state in memory: a second one on the
	// same file stops here. The lock is held until the process ends.
	if cfg.Database.Driver == config.DriverSQLite {
		release, err := gormstore.LockSQLite(cfg.Database.DSN)
		if err != nil {
			if !errors.Is(err, gormstore.ErrSQLiteInUse) {
				// The file the setting names cannot be locked (its folder cannot be made).
				err = fmt.Errorf("%s: %w", config.EnvName("database.dsn"), err)
			}
			return err
		}
		defer release()
	}
	s, cleanup, err := wiring.NewServer(cfg, logger)
	if err != nil {
		return err
	}
	defer cleanup()
	a := newApp(s)
	ctx := cmd.Context()
	if err := s.MigrateIfEnabled(ctx); err != nil {
		return err
	}
	if cfg.Database.Driver == config.DriverSQLite {
		// This process holds the database's lock, so the process that left jobs running
		// is dead: they are taken back now rather than when their leases run out.
		// Failing to is no reason not to start: the leases run out by themselves.
		if n, err := s.JobQueue.ReleaseLeases(ctx); err != nil {
			logger.Warn("jobs a previous process was running wait for their leases to run out", "err", err)
		} else if n > 0 {
			logger.Info("jobs a previous process was running are taken back at once", "jobs", n)
		}
	}
	if err := a.bootstrapAdmin(ctx); err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("%s: %w", config.EnvName("http.addr"), err)
	}
	opsLn, err := a.listenOps(ctx)
	if err != nil {
		_ = ln.Close()
		return err
	}
	stopProfiler, err := a.startProfiler(ctx)
	if err != nil {
		_ = ln.Close()
		if opsLn != nil {
			_ = opsLn.Close()
		}
		return err
	}
	defer stopProfiler()
	err = supervisor.New(logger, supervisor.Settings{}).Run(ctx,
		supervisor.Component{Name: "http", Essential: true, Run: func(ctx context.Context) error { return a.serve(ctx, ln, opsLn) }},
		supervisor.Component{Name: "jobs", Run: s.Jobs.Run},
		supervisor.Component{Name: "api-key-uses", Run: s.APIKeys.RunUseFlusher},
		supervisor.Component{Name: "media-sweep", Run: a.sweepMedia},
	)
	// The HTTP server has stopped: the uses of personal API keys recorded by the last requests
	// are written now, before the database closes.
	if ferr := s.APIKeys.FinalFlush(ctx); ferr != nil {
		logger.Warn("api keys: recording last uses at shutdown failed", "err", ferr)
	}
	return err
}

// newServer is an http.Server with the configured timeouts.
func (a *app) newServer(handler http.Handler) *http.Server {
	h := a.cfg.HTTP
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: h.ReadHeaderTimeout,
		ReadTimeout:       h.ReadTimeout,
		WriteTimeout:      h.WriteTimeout,
		IdleTimeout:       h.IdleTimeout,
		MaxHeaderBytes:    httpapi.MaxHeaderBytes,
		// OPTIONS * reaches the router (which answers it like any other request, with
		// X-Request-ID) instead of net/http's own empty 200.
		DisableGeneralOptionsHandler: true,
		ErrorLog:                     slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn),
	}
}

// serve serves the API on ln and, when opsLn is not nil, the operations listener on it, until
// ctx is done or either server fails. The operations listener follows the API's shutdown and
// closes after it, so /metrics and /readyz (503 by then) stay readable while the API drains.
func (a *app) serve(ctx context.Context, ln, opsLn net.Listener) error {
	h := a.cfg.HTTP
	servers := []*http.Server{a.newServer(a.router)}
	listeners := []net.Listener{ln}
	if opsLn != nil {
		servers = append(servers, a.newServer(a.opsHandler()))
		listeners = append(listeners, opsLn)
	}
	served := make(chan error, len(servers))
	for i, srv := range servers {
		// At most APP_HTTP_MAX_CONNECTIONS connections are held open on each listener, and the
		// requests net/http refuses on its own are answered as problem documents with
		// X-Request-ID, like every other answer.
		limited := httpapi.LimitConnections(listeners[i], h.MaxConnections, a.logger, a.srv.Connections)
		guarded := httpapi.GuardRefusals(srv, limited, a.logger, a.srv.Connections)
		go func() { served <- srv.Serve(guarded) }()
	}
	// A server that stops on its own ends the process; the other one must not linger.
	closeAll := func() {
		for _, srv := range servers {
			_ = srv.Close()
		}
	}
	a.logger.Info("serving", "addr", ln.Addr().String(), "env", a.cfg.Env, "database", a.cfg.Database.Driver)
	if opsLn != nil {
		a.logger.Info("operations listener serving /metrics, /livez and /readyz", "addr", opsLn.Addr().String())
	}
	select {
	case err := <-served:
		closeAll()
		return err
	case <-ctx.Done():
	}
	a.logger.Info("shutting down", "delay", h.ShutdownDelay, "grace", h.ShutdownGrace)
	a.readiness.SetShuttingDown()
	// Clients get Connection: close from now on, so they reconnect elsewhere.
	for _, srv := range servers {
		srv.SetKeepAlivesEnabled(false)
	}
	if h.ShutdownDelay > 0 {
		// Keep serving while /readyz answers 503, until the load balancer has noticed.
		t := time.NewTimer(h.ShutdownDelay)
		select {
		case <-t.C:
		case err := <-served:
			t.Stop()
			closeAll()
			return err
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.ShutdownGrace)
	defer cancel()
	// In order: the API first, then the operations listener.
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil {
			closeAll()
			return fmt.Errorf("graceful shutdown did not finish within %s: %w", h.ShutdownGrace, err)
		}
	}
	for range servers {
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	a.logger.Info("stopped")
	return nil
}
