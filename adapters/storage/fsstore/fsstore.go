// Package fsstore is the filesystem ports.ObjectStore, the default: objects are files under
// a folder (`$APP_DATA_DIR/media`).
//
// Layout: <dir>/objects/<key> holds the objects (a key's '/' separators are folders), and
// <dir>/tmp holds the uploads being written. A Put writes a new file in tmp, fsyncs it,
// renames it to its key (an atomic replace on the same filesystem) and fsyncs the key's
// folder, so that a crash at any moment leaves either the old object or the new one under
// the key, never a part of one; a crash before the rename leaves only a temporary in tmp,
// which List never reports (it walks objects only) and Sweep removes once it is old.
//
// Every path is opened through an os.Root on <dir>, and keys are validated
// (storage.ValidateKey), so no key, symbolic link or ".." can reach a file outside the
// folder. Files are created 0600 and folders 0700.
//
// A filesystem cannot hold a key that is also the folder of another ("a" and "a/b"): such a
// Put fails. The service's keys (an id, then fixed suffixes) never do that.
package fsstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/acme/postsvc/adapters/storage"
	"github.com/acme/postsvc/ports"
)

const (
	objectsDir = "objects"
	tmpDir     = "tmp"
	filePerm   = 0o600
	dirPerm    = 0o700
	// DefaultStaleAge is how old a temporary must be before New's sweep removes it: far
	// longer than any upload takes, so that a sweep by another instance sharing the folder
	// never removes an upload still being written (and if it did, that Put would fail at
	// its rename, leaving nothing).
	DefaultStaleAge = time.Hour
	// copyBuffer is the size of the buffer an upload is copied through.
	copyBuffer = 256 << 10
)

// Store is a ports.ObjectStore on a folder. It is safe for concurrent use.
type Store struct {
	root *os.Root
	dir  string
	now  func() time.Time
	// folders orders the making of an object's folders and its rename into them (shared)
	// against Delete's removal of the folders it left empty (exclusive), within this
	// process; install retries for other processes sharing the folder.
	folders sync.RWMutex
}

var (
	_ ports.ObjectStore         = (*Store)(nil)
	_ ports.PartialWriteSweeper = (*Store)(nil) // the media sweep removes killed writes through it
)

// Options tune a Store; the zero value is the default.
type Options struct {
	// StaleAge is the age past which New removes leftover temporaries (DefaultStaleAge
	// when zero; negative: New sweeps nothing).
	StaleAge time.Duration
}

// New opens (creating it 0700 if needed) the store in dir and removes temporaries that
// crashed uploads left there more than opts.StaleAge ago. Close releases it.
func New(dir string, opts Options) (*Store, error) {
	if dir == "" {
		return nil, errors.New("fsstore: no folder given")
	}
	for _, d := range []string{dir, filepath.Join(dir, objectsDir), filepath.Join(dir, tmpDir)} {
		if err := os.MkdirAll(d, dirPerm); err != nil {
			return nil, fmt.Errorf("fsstore: %w", err)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("fsstore: %w", err)
	}
	s := &Store{root: root, dir: dir, now: time.Now}
	age := opts.StaleAge
	if age == 0 {
		age = DefaultStaleAge
	}
	if age > 0 {
		if _, err := s.Sweep(context.Background(), age); err != nil {
			_ = root.Close()
			return nil, err
		}
	}
	return s, nil
}

// Dir returns the store's folder.
func (s *Store) Dir() string { return s.dir }

// Close releases the folder.
func (s *Store) Close() error { return s.root.Close() }

// objectPath is the root-relative path of key's file.
func objectPath(key string) string { return objectsDir + "/" + key }

// Put implements ports.ObjectStore.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, _ string) (written int64, err error) {
	if err := storage.ValidateKey(key); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	tmpName, err := tempName()
	if err != nil {
		return 0, err
	}
	tmp := tmpDir + "/" + tmpName
	f, err := s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return 0, fmt.Errorf("fsstore: put %s: %w", key, err)
	}
	closed := false
	defer func() {
		if err != nil {
			if !closed {
				_ = f.Close()
			}
			_ = s.root.Remove(tmp)
		}
	}()
	written, err = io.CopyBuffer(f, ctxReader{ctx: ctx, r: r}, make([]byte, copyBuffer))
	if err != nil {
		return 0, fmt.Errorf("fsstore: put %s: %w", key, err)
	}
	if size >= 0 && written != size {
		return 0, fmt.Errorf("fsstore: put %s: the body had %d bytes, %d were announced", key, written, size)
	}
	if err = f.Sync(); err != nil {
		return 0, fmt.Errorf("fsstore: put %s: %w", key, err)
	}
	closed = true
	if err = f.Close(); err != nil {
		return 0, fmt.Errorf("fsstore: put %s: %w", key, err)
	}
	if err = ctx.Err(); err != nil {
		return 0, err
	}
	if err = s.install(tmp, key); err != nil {
		return 0, fmt.Errorf("fsstore: put %s: %w", key, err)
	}
	return written, nil
}

// installAttempts bounds install's attempts when another process removes the folders it
// makes.
const installAttempts = 5

// install renames the synced temporary tmp to key's path, creating (and syncing) the folders
// on the way, then syncs the key's folder so the rename itself is durable.
func (s *Store) install(tmp, key string) error {
	dst := objectPath(key)
	parent := path.Dir(dst)
	var err error
	// A Delete may remove the folders it left empty while they are made again here and before
	// the rename fills them: in this process it waits (folders), and another process's is met
	// by making them again. Without either, an upload right after another's objects were
	// removed failed with "mkdirat objects/media/<owner>: no such file or directory".
	s.folders.RLock()
	defer s.folders.RUnlock()
	for range installAttempts {
		if err = s.mkdirs(parent); err == nil {
			err = s.root.Rename(tmp, dst)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return err
	}
	return s.syncDir(parent)
}

// mkdirs makes the folder dir (root-relative, under objects) and any missing parents, and
// syncs the parent of each folder it made so that the new entries survive a crash.
func (s *Store) mkdirs(dir string) error {
	var missing []string
	for d := dir; d != objectsDir && d != "."; d = path.Dir(d) {
		if _, err := s.root.Stat(d); err == nil {
			break
		}
		missing = append(missing, d)
	}
	if len(missing) == 0 {
		return nil
	}
	if err := s.root.MkdirAll(dir, dirPerm); err != nil {
		return err
	}
	for _, d := range missing {
		if err := s.syncDir(path.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) syncDir(dir string) error {
	d, err := s.root.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if closeErr := d.Close(); err == nil {
		err = closeErr
	}
	return err
}

// Open implements ports.ObjectStore. The object is the open file itself (reads, Seek,
// ReadAt and sendfile through io.Copy), so a later Put or Delete of the key does not change
// what an open object reads.
func (s *Store) Open(ctx context.Context, key string) (ports.Object, error) {
	if err := storage.ValidateKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := s.root.Open(objectPath(key))
	if err != nil {
		return nil, notFound(key, err)
	}
	info, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("fsstore: open %s: %w", key, err)
	}
	if !info.Mode().IsRegular() {
		_ = f.Close()
		return nil, fmt.Errorf("fsstore: open %s: %w", key, ports.ErrObjectNotFound)
	}
	return &Object{File: f, info: objectInfo(key, info)}, nil
}

// Object is an open stored object: the file, and what it was when opened.
type Object struct {
	*os.File
	info ports.ObjectInfo
}

// Info implements ports.Object.
func (o *Object) Info() ports.ObjectInfo { return o.info }

// Stat implements ports.ObjectStore.
func (s *Store) Stat(ctx context.Context, key string) (ports.ObjectInfo, error) {
	if err := storage.ValidateKey(key); err != nil {
		return ports.ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return ports.ObjectInfo{}, err
	}
	info, err := s.root.Lstat(objectPath(key))
	if err != nil {
		return ports.ObjectInfo{}, notFound(key, err)
	}
	if !info.Mode().IsRegular() {
		return ports.ObjectInfo{}, fmt.Errorf("fsstore: stat %s: %w", key, ports.ErrObjectNotFound)
	}
	return objectInfo(key, info), nil
}

// Delete implements ports.ObjectStore. It also removes the key's folders that it leaves
// empty, so deleted objects leave no folders behind.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := storage.ValidateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p := objectPath(key)
	info, err := s.root.Lstat(p)
	if err != nil {
		if isMissing(err) {
			return nil
		}
		return fmt.Errorf("fsstore: delete %s: %w", key, err)
	}
	if info.IsDir() {
		return nil // a folder of other keys, not an object
	}
	if err := s.root.Remove(p); err != nil && !isMissing(err) {
		return fmt.Errorf("fsstore: delete %s: %w", key, err)
	}
	if err := s.syncDir(path.Dir(p)); err != nil && !isMissing(err) {
		return fmt.Errorf("fsstore: delete %s: %w", key, err)
	}
	// Remove the folders left empty; Remove fails (and the walk stops) at the first one
	// that still holds something.
	s.folders.Lock()
	defer s.folders.Unlock()
	for d := path.Dir(p); d != objectsDir && d != "."; d = path.Dir(d) {
		if !s.removeIfEmpty(d) {
			break
		}
	}
	return nil
}

// removeIfEmpty removes the folder dir and reports whether it did (it fails when dir holds
// something).
func (s *Store) removeIfEmpty(dir string) bool { return s.root.Remove(dir) == nil }

// List implements ports.ObjectStore: it walks the folder of the prefix's complete segments
// and reports the regular files whose keys start with prefix. Temporaries are in another
// folder and never seen.
func (s *Store) List(ctx context.Context, prefix string, fn func(ports.ObjectInfo) error) error {
	if err := storage.ValidatePrefix(prefix); err != nil {
		return err
	}
	start := objectsDir
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = objectPath(prefix[:i])
	}
	fsys := s.root.FS()
	err := fs.WalkDir(fsys, start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == start && isMissing(err) {
				return fs.SkipAll
			}
			if isMissing(err) {
				return nil // removed while walking
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		key := strings.TrimPrefix(p, objectsDir+"/")
		if d.IsDir() {
			// Skip folders that cannot hold a key with the prefix.
			if p != start && !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(key, prefix) || !validKey(key) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if isMissing(err) {
				return nil
			}
			return err
		}
		return fn(objectInfo(key, info))
	})
	if err != nil && !errors.Is(err, fs.SkipAll) {
		return err
	}
	return nil
}

// Check implements ports.ObjectStore: it writes, syncs and removes a small file in the
// temporaries' folder, so a read-only or full disk, or a folder that went away, is reported.
func (s *Store) Check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	name, err := tempName()
	if err != nil {
		return err
	}
	p := tmpDir + "/check-" + name
	f, err := s.root.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return fmt.Errorf("fsstore: %s is not writable: %w", s.dir, err)
	}
	_, err = f.Write([]byte("ok"))
	if err == nil {
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if removeErr := s.root.Remove(p); err == nil {
		err = removeErr
	}
	if err != nil {
		return fmt.Errorf("fsstore: %s is not writable: %w", s.dir, err)
	}
	if _, err := s.root.Stat(objectsDir); err != nil {
		return fmt.Errorf("fsstore: %w", err)
	}
	return nil
}

// Sweep removes the temporaries last written more than olderThan ago: what uploads left when
// their process was killed. It returns how many it removed.
func (s *Store) Sweep(ctx context.Context, olderThan time.Duration) (int, error) {
	d, err := s.root.Open(tmpDir)
	if err != nil {
		return 0, fmt.Errorf("fsstore: sweep: %w", err)
	}
	entries, err := d.ReadDir(-1)
	_ = d.Close()
	if err != nil {
		return 0, fmt.Errorf("fsstore: sweep: %w", err)
	}
	cutoff := s.now().Add(-olderThan)
	removed := 0
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(cutoff) {
			continue
		}
		if err := s.root.RemoveAll(tmpDir + "/" + e.Name()); err == nil {
			removed++
		}
	}
	return removed, nil
}

// validKey skips files no Put could have made (a file an operator left there).
func validKey(key string) bool { return storage.ValidateKey(key) == nil }

func objectInfo(key string, info fs.FileInfo) ports.ObjectInfo {
	return ports.ObjectInfo{Key: key, Size: info.Size(), Modified: info.ModTime().UTC()}
}

// notFound maps a missing file (or a key whose folder is a file) to ErrObjectNotFound.
func notFound(key string, err error) error {
	if isMissing(err) {
		return fmt.Errorf("fsstore: %s: %w", key, ports.ErrObjectNotFound)
	}
	return fmt.Errorf("fsstore: %s: %w", key, err)
}

// isMissing reports a path that does not exist, or runs through a file where a folder was
// expected (key "a/b" when "a" is an object).
func isMissing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

func tempName() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return ".tmp-" + hex.EncodeToString(b[:]), nil
}

// ctxReader stops a copy at the first read after ctx is done.
type ctxReader struct {
	ctx context.Context //nolint:containedctx // lives for one Put only
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
