package imaging_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/acme/postsvc/adapters/media/imaging"
)

func TestRemoveStaleTempsRemovesOnlyOldSpools(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, age time.Duration) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-age)
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
		return p
	}
	old := write("imaging-webp-123", 2*time.Hour)
	young := write("imaging-webp-456", time.Minute)
	other := write("somebody-elses-file", 2*time.Hour)
	if err := os.Mkdir(filepath.Join(dir, "imaging-webp-dir"), 0o700); err != nil {
		t.Fatal(err)
	}
	n, err := imaging.RemoveStaleTemps(dir, time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("removed %d, %v; want the one old spool", n, err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Error("the old spool is still there")
	}
	for _, keep := range []string{young, other, filepath.Join(dir, "imaging-webp-dir")} {
		if _, err := os.Stat(keep); err != nil {
			t.Errorf("%s was removed: %v", keep, err)
		}
	}
}
