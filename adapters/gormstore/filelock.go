package gormstore

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/acme/postsvc/adapters/system"
	"github.com/acme/postsvc/config"
)

// ErrSQLiteInUse is returned by LockSQLite when another process holds the database file's lock.
var ErrSQLiteInUse = errors.New("SQLite database file in use by another server process")

// inUseError is the message LockSQLite gives a second server; it matches ErrSQLiteInUse
// without repeating the sentinel's text.
type inUseError string

func (e inUseError) Error() string        { return string(e) }
func (e inUseError) Is(target error) bool { return target == ErrSQLiteInUse }

// heldLocks keeps every lock file LockSQLite holds reachable until its release: an *os.File
// that nothing refers to is closed by the garbage collector, and closing it would drop the
// lock while the server still runs.
var heldLocks sync.Map // *os.File -> struct{}

// LockSQLite takes the single-process lock of the SQLite database dsn names (a file path,
// optionally "file:"-prefixed and with driver parameters after "?") and holds it until release
// is called or the process ends.
//
// With SQLite the server is one process that keeps principals, stamps and caches in memory, so
// a second server on the same file would serve stale answers; the second one stops instead,
// with ErrSQLiteInUse and a message naming the other process and the way to run several
// instances (MySQL). The lock is an exclusive, non-blocking flock(2) on "<file>.lock", next to
// the database file, holding the owner's pid. The kernel drops it when the process ends in any
// way, SIGKILL included, so a crash never leaves a stale lock; the file itself stays (removing
// it could let two processes lock two different files of that name). In-memory databases
// (":memory:", "file::memory:", mode=memory) belong to their process alone and take no lock.
// Only the server takes it: the command-line tools keep nothing in memory and may run beside
// it. On systems without flock (Windows) the lock is not enforced.
func LockSQLite(dsn string) (release func(), err error) {
	file, memory, err := sqliteFile(dsn)
	if err != nil || memory {
		return func() {}, err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o750); err != nil {
		return nil, fmt.Errorf("gormstore: create SQLite directory: %w", err)
	}
	// The same file reached through a symbolic link (to it or to its folder) gets the same
	// lock; a file not created yet is resolved through its folder.
	if real, err := filepath.EvalSymlinks(file); err == nil {
		file = real
	} else if dir, err := filepath.EvalSymlinks(filepath.Dir(file)); err == nil {
		file = filepath.Join(dir, filepath.Base(file))
	}
	lockPath := file + ".lock"
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, sqliteFileMode) //nolint:gosec // G304: next to the operator's own database path
	if err != nil {
		return nil, fmt.Errorf("gormstore: open SQLite lock file: %w", err)
	}
	if err := system.TryLockFile(f); err != nil {
		pid := "pid unknown"
		if b, rerr := os.ReadFile(lockPath); rerr == nil { //nolint:gosec // G304: as above
			if n, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && n > 0 {
				pid = "pid " + strconv.Itoa(n)
			}
		}
		_ = f.Close()
		if !errors.Is(err, system.ErrFileLocked) {
			return nil, fmt.Errorf("gormstore: lock %s: %w", lockPath, err)
		}
		return nil, inUseError(fmt.Sprintf("database file %s is in use by another postsvc process (%s) holding %s; "+
			"with SQLite only one server process may use a database file: stop the other one, "+
			"or use MySQL (%s=%s) to run several instances",
			file, pid, lockPath, config.EnvName("database.driver"), config.DriverMySQL))
	}
	// The lock is ours: record whose it is, for the message a second server prints.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	heldLocks.Store(f, struct{}{})
	var once sync.Once
	return func() {
		once.Do(func() {
			_ = f.Truncate(0)
			_ = f.Close() // closing the last descriptor of the open file drops the lock
			heldLocks.Delete(f)
		})
	}, nil
}

// sqliteFile returns the file path of a SQLite DSN as sqliteDSN reads it, and whether the
// DSN names an in-memory database.
func sqliteFile(dsn string) (string, bool, error) {
	path, rawQuery, _ := strings.Cut(dsn, "?")
	if path == "" {
		return "", false, errors.New("gormstore: empty SQLite database path")
	}
	query, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", false, fmt.Errorf("gormstore: invalid SQLite DSN parameters: %w", err)
	}
	file := strings.TrimPrefix(path, "file:")
	if file == ":memory:" || strings.HasPrefix(file, ":memory:") || query.Get("mode") == "memory" {
		return "", true, nil
	}
	if abs, err := filepath.Abs(file); err == nil {
		file = abs
	}
	return file, false, nil
}
