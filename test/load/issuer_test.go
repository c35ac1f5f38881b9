package main

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/config"
)

// TestIssuerWays runs the same statements through both ways of issuing them, on the pool and
// in a transaction, and checks that they read and write alike and that the prepared way
// refuses a statement it did not prepare up front.
func TestIssuerWays(t *testing.T) {
	db := kvPool(t, 2)
	ctx := context.Background()
	const (
		insert = "INSERT INTO kv (k, v) VALUES (?, ?)"
		read   = "SELECT v FROM kv WHERE k = ?"
	)
	prepared, err := preparedIssuer(ctx, db, insert, read)
	if err != nil {
		t.Fatal(err)
	}
	for _, is := range []*issuer{textIssuer(db), prepared} {
		key := map[bool]string{false: "text", true: "prepared"}[is.prepared]
		t.Run(key, func(t *testing.T) {
			if err := is.exec(ctx, nil, insert, key, 1); err != nil {
				t.Fatal(err)
			}
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			var v int
			if err := is.scanOne(ctx, tx, read, []any{key}, &v); err != nil || v != 1 {
				t.Fatalf("read in the transaction: %d, %v; want 1", v, err)
			}
			if err := is.exec(ctx, tx, insert, key+"-tx", 2); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			if err := is.scanOne(ctx, nil, read, []any{key + "-tx"}, &v); err != nil || v != 2 {
				t.Fatalf("read on the pool: %d, %v; want 2", v, err)
			}
			if err := is.scanOne(ctx, nil, read, []any{"absent"}, &v); !errors.Is(err, sql.ErrNoRows) {
				t.Fatalf("read of no row: %v, want sql.ErrNoRows", err)
			}
		})
	}
	if err := prepared.exec(ctx, nil, "DELETE FROM kv"); err == nil {
		t.Fatal("a statement that was not prepared up front ran: it would be prepared inside a transaction")
	}
}

// TestPreparedIssuerNeverPreparesInATransaction holds every connection of a one-connection
// pool in a transaction and runs the prepared statements in it: they were prepared up front,
// so nothing waits for a free connection. Preparing on first use here deadlocked the MySQL
// add-post ceiling, whose 64 clients hold the pool's connections in transactions.
func TestPreparedIssuerNeverPreparesInATransaction(t *testing.T) {
	db := kvPool(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	is, err := preparedIssuer(ctx, db, "INSERT INTO kv (k, v) VALUES (?, ?)", "SELECT v FROM kv WHERE k = ?")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := is.exec(ctx, tx, "INSERT INTO kv (k, v) VALUES (?, ?)", "a", 1); err != nil {
		t.Fatalf("insert in the transaction that holds the only connection: %v", err)
	}
	var v int
	if err := is.scanOne(ctx, tx, "SELECT v FROM kv WHERE k = ?", []any{"a"}, &v); err != nil || v != 1 {
		t.Fatalf("read in the transaction: %d, %v", v, err)
	}
}

// kvPool opens a SQLite pool of conns connections with the service's adapter, on a file of
// the test's own holding one table, kv (k text key, v integer).
func kvPool(t *testing.T, conns int) *sql.DB {
	t.Helper()
	gdb, cleanup, err := gormstore.Open(config.Database{
		Driver: config.DriverSQLite, DSN: filepath.Join(t.TempDir(), "kv.db"),
		MaxOpenConns: conns, MaxIdleConns: conns, ConnMaxLifetime: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanup)
	db, err := gdb.DB()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(t.Context(), "CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	return db
}
