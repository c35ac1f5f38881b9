package storage_test

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acme/postsvc/adapters/storage/fsstore"
	"github.com/acme/postsvc/adapters/storage/s3store"
	"github.com/acme/postsvc/test/contract"
	"github.com/acme/postsvc/test/contract/storage"
	"github.com/acme/postsvc/test/fakes"
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

// TestFake runs the storage contract on the in-memory store that use-case tests rely on.
func TestFake(t *testing.T) {
	contract.Run(t, storage.Tests(), func(t *testing.T) storage.Backend {
		return storage.Backend{Store: fakes.NewObjects(fakes.NewClock(time.Now()))}
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

// TestS3WithoutAServer runs TestS3 in a child process that can find no S3 server: it must be
// skipped on a developer's machine and fail in CI, so CI can never pass by testing nothing.
func TestS3WithoutAServer(t *testing.T) {
	if os.Getenv("STORAGE_NO_S3_CHILD") == "1" {
		t.Skip("child of TestS3WithoutAServer")
	}
	empty := t.TempDir()
	for _, c := range []struct{ ci, want string }{{"", "--- SKIP: TestS3"}, {"true", "--- FAIL: TestS3"}} {
		t.Run("CI="+c.ci, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestS3$", "-test.v")
			cmd.Env = append(os.Environ(), "STORAGE_NO_S3_CHILD=1", "CI="+c.ci, storage.EnvS3Endpoint+"=",
				storage.EnvVersityGW+"=", "PATH="+empty, "XDG_CACHE_HOME="+empty, "HOME="+empty)
			out, err := cmd.CombinedOutput()
			if !strings.Contains(string(out), c.want) {
				t.Fatalf("CI=%q: want %q in:\n%s", c.ci, c.want, out)
			}
			if c.ci == "true" && (err == nil || !strings.Contains(string(out), "cannot run in CI")) {
				t.Fatalf("CI=true: the run must fail and say why: %v\n%s", err, out)
			}
			if c.ci == "" && err != nil {
				t.Fatalf("without CI the run must pass with the test skipped: %v\n%s", err, out)
			}
		})
	}
}

// TestS3Check: the readiness check of the S3 store passes on a bucket that exists and fails,
// within its timeout, on one that does not, on the real server.
func TestS3Check(t *testing.T) {
	srv := storage.S3(t)
	if err := srv.NewBucket(t).Check(t.Context()); err != nil {
		t.Fatalf("check of an existing bucket: %v", err)
	}
	missing, err := s3store.New(t.Context(), srv.Settings("postsvc-test-missing-bucket"))
	if err != nil {
		t.Fatal(err)
	}
	if err := missing.Check(t.Context()); err == nil {
		t.Fatal("check of a missing bucket passed")
	}
}
