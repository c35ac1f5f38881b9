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
	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/domain/user"
	"github.com/acme/postsvc/ports"
)

// app is everything the commands need, assembled by wire (wire_gen.go).
type app struct {
	cfg       *config.Config
	logger    *slog.Logger
	router    http.Handler
	scrape    scrapeHandler
	readiness *httpapi.Readiness
	migrator  *gormstore.Migrator
	uow       ports.UnitOfWork
	repos     ports.Repositories
	hasher    ports.PasswordHasher
	clock     ports.Clock
	ids       ports.IDGenerator
}

func (a *app) migrateIfEnabled(ctx context.Context) error {
	if !a.cfg.Database.MigrateOnStart {
		return nil
	}
	if err := a.migrator.Up(ctx); err != nil {
		return fmt.Errorf("migrations (set %s=false to skip them at start): %w", config.EnvName("database.migrate_on_start"), err)
	}
	return nil
}

// bootstrapAdmin creates the configured first admin when the service has no admin yet. Once
// any admin exists the settings are ignored, so they can stay in place without effect.
func (a *app) bootstrapAdmin(ctx context.Context) error {
	b := a.cfg.Bootstrap
	if b.AdminEmail == "" {
		return nil
	}
	n, err := a.repos.Users().CountAdminsForUpdate(ctx)
	if err != nil {
		return fmt.Errorf("bootstrap admin: %w", err)
	}
	if n > 0 {
		a.logger.Debug("bootstrap admin settings ignored: an admin exists")
		return nil
	}
	u, err := a.createAccount(ctx, ports.NewUserInput{Email: b.AdminEmail, Password: b.AdminPassword, Role: string(user.RoleAdmin)})
	if errors.Is(err, user.ErrEmailTaken) {
		// Another instance won the race, or the address belongs to a plain user: never
		// promote an existing account silently.
		a.logger.Warn("bootstrap admin not created: the email is already registered")
		return nil
	}
	if err != nil {
		return fmt.Errorf("bootstrap admin (%s): %w", config.EnvName("bootstrap.admin_email"), err)
	}
	a.logger.Info("bootstrap admin created", "user_id", u.ID())
	return nil
}

// runServe migrates (unless switched off), creates the bootstrap admin, serves until SIGINT
// or SIGTERM, then stops being ready, keeps serving for the shutdown delay (0 by default),
// lets in-flight requests finish within the grace period and closes the database.
func runServe(cmd *cobra.Command, _ []string) error {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, cmd.ErrOrStderr())
	a, cleanup, err := newApp(cfg, logger)
	if err != nil {
		return err
	}
	defer cleanup()
	ctx := cmd.Context()
	if err := a.migrateIfEnabled(ctx); err != nil {
		return err
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
	return a.serve(ctx, ln, opsLn)
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
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn),
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
		go func() { served <- srv.Serve(listeners[i]) }()
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
