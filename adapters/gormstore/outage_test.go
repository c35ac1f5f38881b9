package gormstore_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"
	"gorm.io/gorm"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/accounts/session"
	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/test/testdb"
)

// TestOutageIsUnavailable cuts the connection to MySQL under a working store: every kind of
// call must fail quickly with domain.ErrUnavailable (never a business error such as "not
// found"), and the store must work again by itself once the database is back.
func TestOutageIsUnavailable(t *testing.T) {
	dsn := testdb.MySQLDSN(t)
	testdb.Migrate(t, mustOpen(t, dsn), config.DriverMySQL)
	cfg, err := mysqldriver.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := testdb.NewProxy(t, cfg.Addr)
	cfg.Addr = p.Addr()
	db := mustOpen(t, cfg.FormatDSN())
	store := newStores(db)
	uow := store.uow

	ctx := t.Context()
	u, err := user.New("01900000-0000-7000-8000-000000000001", mustEmail(t, "outage@x.io"), "hash", "", identity.RoleUser, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Users().Add(ctx, u); err != nil {
		t.Fatal(err)
	}

	// A commit that cannot reach the server is an error, never a silent success.
	err = uow.Do(ctx, func(ctx context.Context, scope ports.Scope) error {
		if err := store.bump(ctx, scope, u.ID()); err != nil {
			return err
		}
		p.Refuse()
		return nil
	})
	if !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("commit over a cut connection: got %v, want ErrUnavailable", err)
	}

	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Ping", store.Ping},
		{"ByID", func(ctx context.Context) error { _, err := store.Users().ByID(ctx, u.ID()); return err }},
		{"ByEmail", func(ctx context.Context) error { _, err := store.Users().ByEmail(ctx, u.Email()); return err }},
		{"Principal", func(ctx context.Context) error {
			_, err := store.Sessions().Principal(ctx, "01900000-0000-7000-8000-000000000002", time.Now())
			return err
		}},
		{"Add", func(ctx context.Context) error { return store.Users().Add(ctx, u) }},
		{"Do", func(ctx context.Context) error {
			return uow.Do(ctx, func(ctx context.Context, scope ports.Scope) error { return store.in(scope).Users().Add(ctx, u) })
		}},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			start := time.Now()
			err := c.call(ctx)
			if !errors.Is(err, domain.ErrUnavailable) {
				t.Fatalf("got %v, want ErrUnavailable", err)
			}
			if errors.Is(err, user.ErrNotFound) || errors.Is(err, user.ErrEmailTaken) {
				t.Fatalf("an outage reads as a business answer: %v", err)
			}
			if d := time.Since(start); d > 4*time.Second {
				t.Fatalf("took %s to report the outage", d)
			}
		})
	}

	p.Restore()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := store.Users().ByID(ctx, u.ID())
		if err == nil {
			if got.ID() != u.ID() {
				t.Fatalf("read back %s", got.ID())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store did not recover after the database came back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The authentication read, never prepared while the database was away, answers again.
	if _, err := store.Sessions().Principal(ctx, "01900000-0000-7000-8000-000000000002", time.Now()); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Principal after recovery: got %v, want session.ErrNotFound", err)
	}
}

// TestOpenUnreachable checks that start-up against a database that is not there fails within
// the connect timeout, as ErrUnavailable.
func TestOpenUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // Nothing listens there now.
	start := time.Now()
	_, _, err = gormstore.Open(config.Database{Driver: config.DriverMySQL, DSN: "root@tcp(" + addr + ")/app", MaxOpenConns: 2})
	if !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %s", d)
	}
}

// TestSQLiteBusyIsUnavailable holds SQLite's write lock from another connection past the busy
// timeout: the blocked write must report ErrUnavailable rather than a generic failure.
func TestSQLiteBusyIsUnavailable(t *testing.T) {
	path := t.TempDir() + "/busy.db"
	db, cleanup, err := gormstore.Open(config.Database{Driver: config.DriverSQLite, DSN: path + "?_pragma=busy_timeout(50)", MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanup)
	testdb.Migrate(t, db, config.DriverSQLite)
	store := newStores(db)
	uow := store.uow

	holding, release := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		done <- uow.Do(t.Context(), func(context.Context, ports.Scope) error {
			close(holding)
			<-release
			return nil
		})
	}()
	<-holding
	u, err := user.New("01900000-0000-7000-8000-000000000003", mustEmail(t, "busy@x.io"), "hash", "", identity.RoleUser, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	err = store.Users().Add(t.Context(), u)
	close(release)
	if txErr := <-done; txErr != nil {
		t.Fatalf("the lock holder failed: %v", txErr)
	}
	if !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("write while locked: got %v, want ErrUnavailable", err)
	}
	// Once the lock is free the same write succeeds.
	if err := store.Users().Add(t.Context(), u); err != nil {
		t.Fatalf("write after the lock was released: %v", err)
	}
}

func mustOpen(t *testing.T, dsn string) *gorm.DB {
	t.Helper()
	db, cleanup, err := gormstore.Open(config.Database{Driver: config.DriverMySQL, DSN: dsn, MaxOpenConns: 4, MaxIdleConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanup)
	return db
}

func mustEmail(t *testing.T, raw string) user.Email {
	t.Helper()
	e, err := user.ParseEmail(raw)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
