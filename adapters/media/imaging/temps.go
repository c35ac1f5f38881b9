package imaging

import (
	"os"
	"path/filepath"
	"strings"
	"time"
)

// tempPattern names the temporary files of WebP files being cleaned (see spool.reserve).
const tempPattern = "imaging-webp-*"

// RemoveStaleTemps removes the temporary files that cleaning WebP files left in dir (empty:
// os.TempDir()) and that are older than age: a process killed while cleaning cannot remove its
// own. The composition root calls it at start; age is far longer than any upload, so files of
// other processes still cleaning are left alone. It returns how many it removed.
func RemoveStaleTemps(dir string, age time.Duration) (int, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	matches, err := filepath.Glob(filepath.Join(dir, tempPattern))
	if err != nil {
		return 0, err
	}
	cutoff := time.Now().Add(-age)
	removed := 0
	for _, path := range matches {
		info, err := os.Lstat(path)
		if err != nil || !info.Mode().IsRegular() || !strings.HasPrefix(info.Name(), "imaging-webp-") || info.ModTime().After(cutoff) {
			continue
		}
		if os.Remove(path) == nil {
			removed++
		}
	}
	return removed, nil
}
