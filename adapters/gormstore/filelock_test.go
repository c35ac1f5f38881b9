//go:build unix

package gormstore_test

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acme/postsvc/adapters/gormstore"
)

// lockHelperEnv makes TestLockSQLiteHelperProcess, run by another test in a child process,
// take the lock of the DSN the variable holds, say so on stderr and wait to be killed.
const lockHelperEnv = "GORMSTORE_LOCK_HELPER_DSN"

// TestLockSQLiteHelperProcess is not a test on its own: it does nothing unless started by
// TestLockSQLiteIsReleasedWhenTheHolderIsKilled (the package keeps no TestMain of its own).
func TestLockSQLiteHelperProcess(t *testing.T) {
	dsn := os.Getenv(lockHelperEnv)
	if dsn == "" {
		return
	}
	if _, err := gormstore.LockSQLite(dsn); err != nil {
		println("lock helper:", err.Error())
		os.Exit(2)
	}
	println("locked") // stderr, read by the parent
	time.Sleep(time.Minute)
	os.Exit(3) // never reached in a passing run: the parent kills the helper first
}

// TestLockSQLiteExcludesASecondHolder takes the lock twice in one process: flock locks belong to
// open file descriptions, so the second open conflicts exactly as another process's would.
func TestLockSQLiteExcludesASecondHolder(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "sub", "app.db")
	release, err := gormstore.LockSQLite(db)
	if err != nil {
		t.Fatal(err)
	}
	lockPath := db + ".lock"
	if b, err := os.ReadFile(lockPath); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Fatalf("lock file holds %q (%v), want this process's pid %d", b, err, os.Getpid())
	}
	if st, err := os.Stat(lockPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("lock file mode: %v %v", st, err)
	}

	// The same file however the DSN spells it: "file:" prefix, driver parameters, a relative
	// path, a symbolic link to the folder, and (once the database exists) to the file.
	t.Chdir(dir)
	if err := os.Symlink(filepath.Join(dir, "sub"), filepath.Join(dir, "linked")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "existing.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "sub", "existing.db"), filepath.Join(dir, "link.db")); err != nil {
		t.Fatal(err)
	}
	existing, err := gormstore.LockSQLite(filepath.Join(dir, "link.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer existing()
	if _, err := gormstore.LockSQLite(filepath.Join(dir, "sub", "existing.db")); !errors.Is(err, gormstore.ErrSQLiteInUse) {
		t.Fatalf("the database file behind a symbolic link: %v, want ErrSQLiteInUse", err)
	}
	for _, dsn := range []string{db, "file:" + db, db + "?_pragma=busy_timeout(1)", filepath.Join("sub", "app.db"), filepath.Join(dir, "linked", "app.db")} {
		again, err := gormstore.LockSQLite(dsn)
		if err == nil {
			again()
			t.Fatalf("%s: a second lock succeeded while the first is held", dsn)
		}
		if !errors.Is(err, gormstore.ErrSQLiteInUse) {
			t.Fatalf("%s: %v, want ErrSQLiteInUse", dsn, err)
		}
		for _, want := range []string{db, lockPath, "pid " + strconv.Itoa(os.Getpid()), "only one server process", "APP_DATABASE_DRIVER=mysql"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: the message does not name %q: %v", dsn, want, err)
			}
		}
	}

	// Another database file in the same folder is another lock.
	other, err := gormstore.LockSQLite(filepath.Join(dir, "sub", "other.db"))
	if err != nil {
		t.Fatalf("another database file: %v", err)
	}
	other()

	release()
	release() // a second call does nothing
	again, err := gormstore.LockSQLite(db)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	again()
}

// TestLockSQLiteInMemoryTakesNoLock checks that in-memory databases, which no other process
// can open, need no lock file and never conflict.
func TestLockSQLiteInMemoryTakesNoLock(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, dsn := range []string{":memory:", "file::memory:", "file::memory:?cache=shared", "file:mem.db?mode=memory&cache=shared"} {
		first, err := gormstore.LockSQLite(dsn)
		if err != nil {
			t.Fatalf("%s: %v", dsn, err)
		}
		second, err := gormstore.LockSQLite(dsn)
		if err != nil {
			t.Fatalf("%s, twice: %v", dsn, err)
		}
		first()
		second()
	}
	if entries, _ := os.ReadDir("."); len(entries) != 0 {
		t.Fatalf("in-memory DSNs created files: %v", entries)
	}
	if _, err := gormstore.LockSQLite(""); err == nil {
		t.Fatal("an empty DSN was accepted")
	}
}

// TestLockSQLiteIsReleasedWhenTheHolderIsKilled starts a process that takes the lock, checks
// that the lock refuses this one naming that process's pid, kills it with SIGKILL (no chance
// to clean up) and takes the lock at once: a crash never leaves a stale lock.
func TestLockSQLiteIsReleasedWhenTheHolderIsKilled(t *testing.T) {
	db := filepath.Join(t.TempDir(), "app.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockSQLiteHelperProcess$")
	cmd.Env = append(os.Environ(), lockHelperEnv+"="+db)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stderr).ReadString('\n')
		line <- s
		_ = cmd.Wait()
		close(exited)
	}()
	select {
	case s := <-line:
		if strings.TrimSpace(s) != "locked" {
			t.Fatalf("helper: %q", s)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the helper did not take the lock within 30 s")
	}

	_, err = gormstore.LockSQLite(db)
	if !errors.Is(err, gormstore.ErrSQLiteInUse) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(cmd.Process.Pid)) {
		t.Fatalf("while another process holds the lock: %v, want ErrSQLiteInUse naming pid %d", err, cmd.Process.Pid)
	}

	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the helper did not die within 10 s of SIGKILL")
	}
	release, err := gormstore.LockSQLite(db)
	if err != nil {
		t.Fatalf("after the holder was killed: %v", err)
	}
	release()
}
