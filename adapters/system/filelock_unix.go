//go:build unix

package system

import (
	"errors"
	"os"
	"syscall"
)

// FileLocksEnforced reports whether TryLockFile takes real locks here.
const FileLocksEnforced = true

// TryLockFile takes an exclusive flock(2) on f without waiting: ErrFileLocked when another
// open file description (in this process or another) holds it. The lock belongs to f's open
// file description, so the kernel drops it when the last descriptor closes, at exit or death
// (SIGKILL included): a crash never leaves a stale lock. Keep f reachable while the lock is
// needed: the garbage collector closes an *os.File nothing refers to.
func TryLockFile(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) //nolint:gosec // G115: a file descriptor fits an int
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return ErrFileLocked
		default:
			return err
		}
	}
}
