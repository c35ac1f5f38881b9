package system

import "errors"

// ErrFileLocked is what TryLockFile returns when another open file description holds the
// lock: another process (or another open of the file in this one) owns it.
var ErrFileLocked = errors.New("file lock held elsewhere")
