//go:build !unix

package system

import "os"

// FileLocksEnforced reports whether TryLockFile takes real locks here: not where flock(2)
// does not exist (Windows).
const FileLocksEnforced = false

// TryLockFile does nothing where flock(2) does not exist (Windows): the lock is not enforced
// there, and callers that must know check FileLocksEnforced.
func TryLockFile(*os.File) error { return nil }
