//go:build unix

package gormstore_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/config"
)

// withUmask runs the test under the common 022 umask, with which SQLite's default 0644 would
// leave the database readable by every local user, and restores the process's own afterwards.
// The umask is process-wide, so tests calling this must not run in parallel.
func withUmask(t *testing.T) {
	t.Helper()
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
}

// openAndWrite opens the SQLite database at path, as the service does, and writes to it with
// the pool still open, so that the -wal and -shm files exist when the test looks.
func openAndWrite(t *testing.T, path string) {
	t.Helper()
	db, cleanup, err := gormstore.Open(config.Database{Driver: config.DriverSQLite, DSN: path, MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanup)
	if err := db.Exec("CREATE TABLE IF NOT EXISTS t (x INTEGER)").Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Exec("INSERT INTO t (x) VALUES (1)").Error; err != nil {
		t.Fatal(err)
	}
}

// assertOwnerOnly fails unless the database file and both of its WAL-mode siblings exist
// with mode 0600.
func assertOwnerOnly(t *testing.T, path string) {
	t.Helper()
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(name)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(name), err)
			continue
		}
		if got := st.Mode().Perm(); got != 0o600 {
			t.Errorf("%s has mode %04o, want 0600 (it holds password and token hashes)", filepath.Base(name), got)
		}
	}
}

// TestSQLiteFilesAreOwnerOnly checks the database file and its -wal and -shm siblings are
// created 0600, both in a folder that already exists (where the driver used to create them
// 0644) and in one Open creates.
func TestSQLiteFilesAreOwnerOnly(t *testing.T) {
	withUmask(t)
	for name, path := range map[string]string{
		"existing folder": filepath.Join(t.TempDir(), "app.db"),
		"new folder":      filepath.Join(t.TempDir(), "nested", "data", "app.db"),
	} {
		t.Run(name, func(t *testing.T) {
			openAndWrite(t, path)
			assertOwnerOnly(t, path)
		})
	}
}

// TestSQLiteLooseFilesAreTightened checks that files left readable to others by an earlier
// version are restricted to 0600 when the service opens them, keeping their data.
func TestSQLiteLooseFilesAreTightened(t *testing.T) {
	withUmask(t)
	path := filepath.Join(t.TempDir(), "app.db")
	// The first pool stays open, so the -wal and -shm files exist; widen all three modes as
	// the old code left them, then open the database again as a restarted service would.
	openAndWrite(t, path)
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(name, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db, cleanup, err := gormstore.Open(config.Database{Driver: config.DriverSQLite, DSN: path, MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	assertOwnerOnly(t, path)
	var n int64
	if err := db.Raw("SELECT COUNT(*) FROM t").Scan(&n).Error; err != nil || n != 1 {
		t.Fatalf("the data did not survive: n=%d err=%v", n, err)
	}
}
