package fsstore_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/postsvc/adapters/storage"
	"github.com/acme/postsvc/adapters/storage/fsstore"
	"github.com/acme/postsvc/ports"
)

func newStore(t *testing.T, dir string, opts fsstore.Options) *fsstore.Store {
	t.Helper()
	s, err := fsstore.New(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestFilesAre0600AndFolders0700(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "media")
	s := newStore(t, dir, fsstore.Options{})
	if _, err := s.Put(t.Context(), "images/abc/original", strings.NewReader("data"), 4, ""); err != nil {
		t.Fatal(err)
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, info.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "objects", "images", "abc", "original")); err != nil || string(b) != "data" {
		t.Fatalf("the object is not a plain file under objects/: %q, %v", b, err)
	}
}

// TestOpenIsAFile: the object is an *os.File, so http.ServeContent's io.Copy can use
// sendfile, and ReadAt works.
func TestOpenIsAFile(t *testing.T) {
	s := newStore(t, t.TempDir(), fsstore.Options{})
	if _, err := s.Put(t.Context(), "k", strings.NewReader("0123456789"), -1, ""); err != nil {
		t.Fatal(err)
	}
	o, err := s.Open(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = o.Close() }()
	obj, ok := o.(*fsstore.Object)
	if !ok || obj.File == nil {
		t.Fatalf("Open returned %T, want a file-backed *fsstore.Object", o)
	}
	b := make([]byte, 3)
	if _, err := obj.ReadAt(b, 4); err != nil || string(b) != "456" {
		t.Fatalf("ReadAt: %q, %v", b, err)
	}
}

func TestNewSweepsStaleTemporaries(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir, fsstore.Options{})
	_ = s.Close()
	tmp := filepath.Join(dir, "tmp")
	stale, fresh := filepath.Join(tmp, ".tmp-stale"), filepath.Join(tmp, ".tmp-fresh")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("half an upload"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * fsstore.DefaultStaleAge)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	s = newStore(t, dir, fsstore.Options{})
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a temporary older than %v survived New: %v", fsstore.DefaultStaleAge, err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a recent temporary (an upload in progress elsewhere) was removed: %v", err)
	}
	n, err := s.Sweep(t.Context(), 0)
	if err != nil || n != 1 {
		t.Fatalf("Sweep(0) removed %d, %v; want the remaining 1", n, err)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Fatalf("tmp holds %v after the sweep", entries)
	}
}

func TestDeleteRemovesEmptyFolders(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir, fsstore.Options{})
	for _, k := range []string{"a/b/c/x", "a/y"} {
		if _, err := s.Put(t.Context(), k, strings.NewReader("x"), 1, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(t.Context(), "a/b/c/x"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "objects", "a", "b")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the emptied folders a/b/c stayed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "objects", "a", "y")); err != nil {
		t.Fatal("a/y must stay")
	}
	// A key naming a folder of other keys is not an object: not found, and Delete keeps it.
	if _, err := s.Stat(t.Context(), "a"); !errors.Is(err, ports.ErrObjectNotFound) {
		t.Fatalf("stat of a folder: %v", err)
	}
	if _, err := s.Open(t.Context(), "a"); !errors.Is(err, ports.ErrObjectNotFound) {
		t.Fatalf("open of a folder: %v", err)
	}
	if err := s.Delete(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "objects", "a", "y")); err != nil {
		t.Fatal("deleting the folder's key removed its objects")
	}
	// A key below an object ("a/y/z" where "a/y" is a file) is not found either.
	if _, err := s.Stat(t.Context(), "a/y/z"); !errors.Is(err, ports.ErrObjectNotFound) {
		t.Fatalf("stat below a file: %v", err)
	}
}

// TestSymlinkCannotEscape: even a symbolic link planted inside the folder (not something the
// store makes) cannot lead a Put or an Open outside it.
func TestSymlinkCannotEscape(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "media")
	outside := filepath.Join(parent, "outside")
	if err := os.MkdirAll(outside, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, dir, fsstore.Options{})
	if err := os.Symlink(outside, filepath.Join(dir, "objects", "evil")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(t.Context(), "evil/planted", strings.NewReader("x"), 1, ""); err == nil {
		t.Error("a put through a symbolic link out of the folder succeeded")
	}
	if o, err := s.Open(t.Context(), "evil/secret"); err == nil {
		b, _ := io.ReadAll(o)
		_ = o.Close()
		t.Errorf("opened a file outside the folder through a symbolic link: %q", b)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Fatalf("the folder outside holds %d entries, want only its own file", len(entries))
	}
	if err := s.Delete(t.Context(), "evil/secret"); err != nil {
		t.Logf("delete through the link: %v", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "secret")); err != nil {
		t.Fatal("a delete through a symbolic link removed a file outside the folder")
	}
}

func TestForgedKeysNeverReachTheFileSystem(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "media")
	s := newStore(t, dir, fsstore.Options{})
	for _, key := range []string{"../escape", "../../escape", "/tmp/escape", "a/../../escape"} {
		if _, err := s.Put(t.Context(), key, strings.NewReader("x"), 1, ""); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("put %q: %v, want ErrInvalidKey", key, err)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escape")); err == nil {
		t.Fatal("a forged key wrote outside the store")
	}
}

func TestCheckFailsWhenTheFolderIsGone(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "media")
	s := newStore(t, dir, fsstore.Options{})
	if err := s.Check(t.Context()); err != nil {
		t.Fatalf("check of a fresh store: %v", err)
	}
	// The temporaries' folder replaced by a file: nothing can be written any more.
	if err := os.RemoveAll(filepath.Join(dir, "tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tmp"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(t.Context()); err == nil {
		t.Fatal("check passed on a store that cannot write")
	}
	if _, err := s.Put(t.Context(), "k", bytes.NewReader([]byte("x")), 1, ""); err == nil {
		t.Fatal("put succeeded on a store that cannot write")
	}
}

// TestPutRacingDeletesOfItsFoldersSucceeds: Delete removes the folders it leaves empty, up to
// the top; a Put making those folders again at the same moment must not fail. It did: an e2e
// upload right after another upload's objects were removed got 503, "mkdirat
// objects/media/<owner>: no such file or directory", once the "media" folder had gone between
// the Put's check and its mkdir.
func TestPutRacingDeletesOfItsFoldersSucceeds(t *testing.T) {
	s := newStore(t, t.TempDir(), fsstore.Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := range 150 {
				key := fmt.Sprintf("media/owner%d/obj%d-%d", w%2, w, i)
				if _, err := s.Put(t.Context(), key, strings.NewReader("x"), 1, ""); err != nil {
					errs <- err
					return
				}
				if err := s.Delete(t.Context(), key); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
