//go:build !unix

package gormstore

import "os"

// tryLockFile does nothing where flock(2) does not exist (Windows): the lock is not enforced
// there, and the service runs as before.
func tryLockFile(*os.File) error { return nil }
