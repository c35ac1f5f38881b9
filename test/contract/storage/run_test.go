package storage_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/acme/postsvc/adapters/storage/fsstore"
	"github.com/acme/postsvc/test/contract"
	"github.com/acme/postsvc/test/contract/storage"
)

func TestMain(m *testing.M) { os.Exit(storage.Main(m)) }

// TestFilesystem runs the storage contract on the filesystem store, each test in a folder of
// its own inside a parent folder that must stay empty but for the store.
func TestFilesystem(t *testing.T) {
	contract.Run(t, storage.Tests(), func(t *testing.T) storage.Backend {
		parent := t.TempDir()
		dir := filepath.Join(parent, "media")
		s, err := fsstore.New(dir, fsstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return storage.Backend{
			Store:     s,
			Leftovers: func(t *testing.T) int { return countFiles(t, filepath.Join(dir, "tmp")) },
			Outside: func(t *testing.T) []string {
				var outside []string
				_ = filepath.WalkDir(parent, func(p string, d fs.DirEntry, err error) error {
					if err == nil && p != parent && p != dir && filepath.Dir(p) == parent {
						outside = append(outside, p)
					}
					return err
				})
				return outside
			},
		}
	})
}

// TestS3 runs the storage contract on the S3 store against a real S3-protocol server
// (versitygw), each test in a bucket of its own.
func TestS3(t *testing.T) {
	srv := storage.S3(t)
	contract.Run(t, storage.Tests(), func(t *testing.T) storage.Backend {
		s := srv.NewBucket(t)
		return storage.Backend{
			Store:     s,
			Leftovers: func(t *testing.T) int { return storage.PendingUploads(t, s) },
		}
	})
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}
