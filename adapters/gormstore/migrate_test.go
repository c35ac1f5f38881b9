package gormstore_test

import (
	"bytes"
	"context"
	"regexp"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/test/testdb"
)

// TestMigrateDownAndUp reverts the schema and applies it again on an already migrated
// database, checking the reported version and status at each step.
func TestMigrateDownAndUp(t *testing.T) {
	for _, backend := range testdb.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			db := backend.Open(t)
			m := testdb.Migrator(t, db, backend.Name)
			latest := m.Latest()
			if latest < 2 {
				t.Fatalf("latest migration %d, want at least 2", latest)
			}
			assertVersion(t, m, latest)
			assertStatus(t, m, `(?m)^1\s+applied\s+\d{4}-\d\d-\d\dT\S+\s+00001_init\.sql$`)
			// A data migration written in Go shows its name in the place of a file.
			assertStatus(t, m, `(?m)^9\s+applied\s+\d{4}-\d\d-\d\dT\S+\s+accounts: case-folded emails and name search \(Go\)$`)
			if err := m.Up(ctx); err != nil {
				t.Fatalf("Up with nothing pending: %v", err)
			}

			// Every migration can be reverted, one Down at a time, newest first.
			for v := latest; v > 0; v-- {
				if err := m.Down(ctx); err != nil {
					t.Fatalf("Down from version %d: %v", v, err)
				}
				assertVersion(t, m, v-1)
			}
			assertStatus(t, m, `(?m)^1\s+pending\s+-\s+00001_init\.sql$`)
			if tables := tableCount(t, db); tables != 0 {
				t.Fatalf("%d application tables left after Down", tables)
			}
			if err := m.Down(ctx); err == nil {
				t.Fatal("Down with nothing applied succeeded")
			}

			if err := m.Up(ctx); err != nil {
				t.Fatalf("Up after Down: %v", err)
			}
			assertVersion(t, m, latest)
			if tables := tableCount(t, db); tables != 4 {
				t.Fatalf("%d application tables after Up, want 4", tables)
			}
		})
	}
}

func assertVersion(t *testing.T, m *gormstore.Migrator, want int64) {
	t.Helper()
	v, err := m.Version(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if v != want {
		t.Fatalf("version = %d, want %d", v, want)
	}
}

func assertStatus(t *testing.T, m *gormstore.Migrator, pattern string) {
	t.Helper()
	var buf bytes.Buffer
	if err := m.Status(t.Context(), &buf); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(pattern).Match(buf.Bytes()) {
		t.Fatalf("status does not match %s:\n%s", pattern, buf.String())
	}
}

func tableCount(t *testing.T, db *gorm.DB) int {
	t.Helper()
	n := 0
	for _, table := range []string{"users", "posts", "sessions", "jobs"} {
		if db.Migrator().HasTable(table) {
			n++
		}
	}
	return n
}

// TestMigrateConcurrentStartsOnMySQL starts several instances against one empty MySQL
// database at once: the migration lock must let exactly one of them migrate while the others
// wait, so all of them succeed and the schema is applied once.
func TestMigrateConcurrentStartsOnMySQL(t *testing.T) {
	dsn := testdb.MySQLDSN(t)
	const instances = 4
	migrators := make([]*gormstore.Migrator, instances)
	for i := range migrators {
		db, cleanup, err := gormstore.Open(config.Database{Driver: config.DriverMySQL, DSN: dsn, MaxOpenConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cleanup)
		if migrators[i], err = gormstore.NewMigrator(db, config.DriverMySQL); err != nil {
			t.Fatal(err)
		}
	}
	errs := make([]error, instances)
	var wg sync.WaitGroup
	for i, m := range migrators {
		wg.Go(func() { errs[i] = m.Up(t.Context()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("instance %d: %v", i, err)
		}
	}
	assertVersion(t, migrators[0], migrators[0].Latest())
}

// TestMigrateWaitsForTheLockOnMySQL holds the migration lock from another connection and
// checks that Up does not migrate until it is released.
func TestMigrateWaitsForTheLockOnMySQL(t *testing.T) {
	dsn := testdb.MySQLDSN(t)
	db, cleanup, err := gormstore.Open(config.Database{Driver: config.DriverMySQL, DSN: dsn, MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanup)
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	holder, err := sqlDB.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	var got int
	if err := holder.QueryRowContext(t.Context(), "SELECT GET_LOCK(CONCAT('postsvc_migrate:', DATABASE()), 1)").Scan(&got); err != nil || got != 1 {
		t.Fatalf("take the lock: %d, %v", got, err)
	}

	m, err := gormstore.NewMigrator(db, config.DriverMySQL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	if err := m.Up(ctx); err == nil {
		t.Fatal("Up migrated while another connection held the lock")
	}
	if db.Migrator().HasTable("users") {
		t.Fatal("the schema was created while the lock was held")
	}

	if err := holder.QueryRowContext(t.Context(), "SELECT RELEASE_LOCK(CONCAT('postsvc_migrate:', DATABASE()))").Scan(&got); err != nil || got != 1 {
		t.Fatalf("release the lock: %d, %v", got, err)
	}
	m, err = gormstore.NewMigrator(db, config.DriverMySQL)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Up(t.Context()); err != nil {
		t.Fatalf("Up after the lock was released: %v", err)
	}
	assertVersion(t, m, m.Latest())
}
