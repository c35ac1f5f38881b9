package accountsgorm

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/domain/accounts/apikey"
	"github.com/acme/postsvc/domain/accounts/session"
	"github.com/acme/postsvc/ports"
)

// TestPrincipalReadsArePreparedOnce checks that the per-request authentication read of each
// credential scheme runs through one statement prepared on the pool, kept for every later
// call, and that the same read inside a unit of work still answers (through that statement
// bound to the transaction, or unprepared until it is ready).
func TestPrincipalReadsArePreparedOnce(t *testing.T) {
	db, cleanup, err := gormstore.Open(config.Database{Driver: config.DriverSQLite, DSN: filepath.Join(t.TempDir(), "p.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanup)
	m, err := gormstore.NewMigrator(db, config.DriverSQLite)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Up(t.Context()); err != nil {
		t.Fatal(err)
	}
	store := NewStore(db)
	uow := gormstore.NewUnitOfWork(db)
	for name, c := range map[string]struct {
		query    string
		read     func(context.Context, ports.Scope) error
		notFound error
	}{
		"session": {principalSQL, func(ctx context.Context, s ports.Scope) error {
			_, err := store.Sessions(s).Principal(ctx, "01900000-0000-7000-8000-000000000002", time.Now())
			return err
		}, session.ErrNotFound},
		"api key": {apiKeyPrincipalSQL, func(ctx context.Context, s ports.Scope) error {
			_, err := store.APIKeys(s).Principal(ctx, apikey.HashSecret("pat_x"), time.Now())
			return err
		}, apikey.ErrNotFound},
	} {
		t.Run(name, func(t *testing.T) {
			if gormstore.PreparedFor(db, c.query) != nil {
				t.Fatal("prepared before first use")
			}
			var first *sql.Stmt
			for i := range 3 {
				if err := c.read(t.Context(), uow.Pool()); !errors.Is(err, c.notFound) {
					t.Fatalf("call %d: got %v, want %v", i, err, c.notFound)
				}
				stmt := gormstore.PreparedFor(db, c.query)
				if stmt == nil {
					t.Fatalf("call %d ran unprepared", i)
				}
				if first == nil {
					first = stmt
				} else if stmt != first {
					t.Fatalf("call %d prepared the statement again", i)
				}
			}
			err := uow.Do(t.Context(), func(ctx context.Context, tx ports.Scope) error { return c.read(ctx, tx) })
			if !errors.Is(err, c.notFound) {
				t.Fatalf("in a unit of work: got %v, want %v", err, c.notFound)
			}
		})
	}
}
