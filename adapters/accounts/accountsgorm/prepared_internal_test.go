package accountsgorm

import (
	"context"
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

// TestStorePreparesThePrincipalReadOnce checks that the pool's authentication read runs
// through one prepared statement, kept for every later call, while a transaction's repository
// has none (a statement prepared on the pool cannot run inside the transaction).
func TestStorePreparesThePrincipalReadOnce(t *testing.T) {
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
	if store.principal.Prepared() != nil {
		t.Fatal("prepared before first use")
	}
	var first any
	for i := range 3 {
		_, err := store.Sessions(uow.Pool()).Principal(t.Context(), "01900000-0000-7000-8000-000000000002", time.Now())
		if !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("call %d: got %v, want session.ErrNotFound", i, err)
		}
		stmt := store.principal.Prepared()
		if stmt == nil {
			t.Fatalf("call %d ran unprepared", i)
		}
		if first == nil {
			first = stmt
		} else if any(stmt) != first {
			t.Fatalf("call %d prepared the statement again", i)
		}
	}
	err = uow.Do(t.Context(), func(_ context.Context, tx ports.Scope) error {
		if r, ok := store.Sessions(tx).(sessionRepo); !ok || r.principal != nil {
			t.Error("a transaction-scoped repository must not use the pool's statement")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestStorePreparesTheAPIKeyReadOnce checks the same of the API key scheme's read.
func TestStorePreparesTheAPIKeyReadOnce(t *testing.T) {
	db, cleanup, err := gormstore.Open(config.Database{Driver: config.DriverSQLite, DSN: filepath.Join(t.TempDir(), "k.db")})
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
	var first any
	for i := range 3 {
		_, err := store.APIKeys(uow.Pool()).Principal(t.Context(), apikey.HashSecret("pat_x"), time.Now())
		if !errors.Is(err, apikey.ErrNotFound) {
			t.Fatalf("call %d: got %v, want apikey.ErrNotFound", i, err)
		}
		stmt := store.keyPrincipal.Prepared()
		if stmt == nil {
			t.Fatalf("call %d ran unprepared", i)
		}
		if first == nil {
			first = stmt
		} else if any(stmt) != first {
			t.Fatalf("call %d prepared the statement again", i)
		}
	}
	err = uow.Do(t.Context(), func(_ context.Context, tx ports.Scope) error {
		if r, ok := store.APIKeys(tx).(apiKeyRepo); !ok || r.principal != nil {
			t.Error("a transaction-scoped repository must not use the pool's statement")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
