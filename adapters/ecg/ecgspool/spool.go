// Package ecgspool keeps the signals of ECG uploads while they are received (ecgport.Spools).
// An upload's body must be read and checked whole before anything is stored, and a body may be
// 64 MiB, so memory is bounded for all uploads together: each upload keeps its blocks in
// memory while its share and the shared budget allow, and writes the rest to a temporary file
// that is removed when the upload ends. Typical uploads (12 leads of 5,000 samples pack to
// about 100 KB) never touch the disk; 64 concurrent 64 MiB uploads take the budget and
// their files, not 64 times their size in memory. A read of a large stored ECG is spooled the
// same way (application/ecg Service.Signals): its blocks are read whole before the answer
// starts, so that a delete meanwhile is a 404 and not an answer cut short. Such a read holds
// its spool until its answer is sent, up to the write timeout to a slow client, so reads
// together may take only half of each budget: slow readers cannot leave uploads no room.
package ecgspool

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/acme/postsvc/adapters/system"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/ecg/ecg"
	ecgport "github.com/acme/postsvc/ports/ecg"
)

// Settings configure the spools.
type Settings struct {
	// Memory bounds the blocks held in memory by all uploads together; one upload holds at
	// most a sixteenth of it.
	Memory int64
	// Dir is the folder of the temporary files; empty means os.TempDir(). A subfolder of its
	// own is made in it.
	Dir string
	// Disk bounds what all uploads together write to their temporary files. An upload that
	// would pass it is refused with domain.ErrOverloaded (503 overloaded, retry shortly)
	// rather than filling the disk, which may hold the database or, in a pod, an emptyDir
	// whose overflow evicts the pod.
	Disk int64
}

// filePattern names spool files, so that leftovers of a killed process can be found.
const filePattern = "ecg-upload-*.spool"

// staleAfter is how old a spool file or folder must be before start-up removes it as a
// leftover when its owner cannot be told dead by its lock (files of versions before owner
// folders, a folder whose lock file is gone, systems without flock): no upload is received for
// that long (the read timeout ends it first), and another process sharing the folder may be
// receiving one right now.
const staleAfter = time.Hour

// Each process spools into a folder of its own, "owner-*", in which it holds an exclusive lock
// on ownerLock for as long as it runs. The kernel drops the lock when the process ends, even by
// SIGKILL, so the next process to start removes the folders whose lock it can take: the files
// of a killed process go at its restart, where an outside probe's crash loop left 12 to 21 MB
// per killed upload for an hour, outside the disk budget. A folder is created as "new-*" and
// renamed once locked, so no process ever sees an owner folder unlocked while its owner lives.
const (
	ownerPattern = "owner-*"
	newPattern   = "new-*"
	ownerLock    = "lock"
)

// Spools makes the spool of each upload.
type Spools struct {
	dir string
	// lock is this process's lock on its folder, kept reachable so that it is never closed
	// (and the lock dropped) while the process runs.
	lock     *os.File
	free     atomic.Int64
	diskFree atomic.Int64
	perItem  int64
	// readFloor and readDiskFloor are the memory and disk a read-back spool leaves free:
	// half of each budget (see NewRead).
	readFloor, readDiskFloor int64
}

var _ ecgport.Spools = (*Spools)(nil)

// New prepares the spool folder and removes the files that a killed process left there.
func New(s Settings) (*Spools, error) {
	if s.Memory <= 0 || s.Disk <= 0 {
		return nil, fmt.Errorf("ecgspool: memory (%d) and disk (%d) budgets must be positive", s.Memory, s.Disk)
	}
	base := s.Dir
	if base == "" {
		base = os.TempDir()
	}
	root := filepath.Join(base, "postsvc-ecg-spool")
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("ecgspool: %w", err)
	}
	removeStale(root, time.Now())
	dir, lock, err := ownFolder(root)
	if err != nil {
		return nil, fmt.Errorf("ecgspool: %w", err)
	}
	sp := &Spools{dir: dir, lock: lock, perItem: max(s.Memory/16, 1), readFloor: s.Memory / 2, readDiskFloor: s.Disk / 2}
	sp.free.Store(s.Memory)
	sp.diskFree.Store(s.Disk)
	return sp, nil
}

// ownFolder makes this process's folder in root and locks it (see ownerPattern).
func ownFolder(root string) (string, *os.File, error) {
	fresh, err := os.MkdirTemp(root, newPattern)
	if err != nil {
		return "", nil, err
	}
	lock, err := os.OpenFile(filepath.Join(fresh, ownerLock), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600) //nolint:gosec // G304: in a folder just made
	if err == nil {
		err = system.TryLockFile(lock)
	}
	if err != nil {
		if lock != nil {
			_ = lock.Close()
		}
		_ = os.RemoveAll(fresh)
		return "", nil, err
	}
	dir := filepath.Join(root, "owner-"+strings.TrimPrefix(filepath.Base(fresh), "new-"))
	if err := os.Rename(fresh, dir); err != nil {
		_ = lock.Close()
		_ = os.RemoveAll(fresh)
		return "", nil, err
	}
	return dir, lock, nil
}

// removeStale deletes what processes that ended left in root: the owner folders whose lock it
// can take (their owner is dead), and, by age (staleAfter), spool files of versions before
// owner folders, folders whose lock cannot tell (no lock file, no flock), and "new-*" folders
// of a process killed while it made its own. Failures only leave files behind.
func removeStale(root string, now time.Time) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		path := filepath.Join(root, e.Name())
		old := false
		if info, err := e.Info(); err == nil {
			old = now.Sub(info.ModTime()) > staleAfter
		}
		isOwner, _ := filepath.Match(ownerPattern, e.Name())
		isNew, _ := filepath.Match(newPattern, e.Name())
		isFile, _ := filepath.Match(filePattern, e.Name())
		switch {
		case e.IsDir() && isOwner:
			if dead, known := ownerDead(path); dead || !known && old {
				_ = os.RemoveAll(path)
			}
		case e.IsDir() && isNew && old, !e.IsDir() && isFile && old:
			_ = os.RemoveAll(path)
		}
	}
}

// ownerDead reports whether the process that owned the folder at path has ended (its lock can
// be taken), and known whether the lock could tell (a lock file, and flock to take it with).
func ownerDead(path string) (dead, known bool) {
	if !system.FileLocksEnforced {
		return false, false
	}
	f, err := os.Open(filepath.Join(path, ownerLock)) //nolint:gosec // G304: in the spool folder
	if err != nil {
		return false, false
	}
	defer func() { _ = f.Close() }() // drops the lock if it was taken
	switch err := system.TryLockFile(f); {
	case err == nil:
		return true, true
	case errors.Is(err, system.ErrFileLocked):
		return false, true
	default:
		return false, false
	}
}

// Free is the memory budget not taken, for tests and metrics.
func (sp *Spools) Free() int64 { return sp.free.Load() }

// DiskFree is the disk budget not taken, for tests and metrics.
func (sp *Spools) DiskFree() int64 { return sp.diskFree.Load() }

// reserve takes n from budget if that much is left above floor.
func reserve(budget *atomic.Int64, n, floor int64) bool {
	for {
		free := budget.Load()
		if free-floor < n {
			return false
		}
		if budget.CompareAndSwap(free, free-n) {
			return true
		}
	}
}

// errDiskFull refuses an upload whose spool file would pass the disk budget, and errReadsFull
// a read whose file would pass the reads' half of it.
var (
	errDiskFull  = fmt.Errorf("%w: ecgspool: the uploads being received fill the spool's disk budget", domain.ErrOverloaded)
	errReadsFull = fmt.Errorf("%w: ecgspool: the large ECGs being sent hold the reads' half of the spool's disk budget", domain.ErrOverloaded)
)

// New starts the spool of one upload.
func (sp *Spools) New() (ecgport.Spool, error) { return &spool{parent: sp, full: errDiskFull}, nil }

// NewRead starts the spool of a stored ECG read back. It takes memory and disk only while
// half of each budget stays free after it, for uploads: a read's spool is held until its answer
// is sent, up to the write timeout to a slow client, so slow readers together hold at most
// half. Past that, Put is domain.ErrOverloaded.
func (sp *Spools) NewRead() (ecgport.Spool, error) {
	return &spool{parent: sp, floor: sp.readFloor, diskFloor: sp.readDiskFloor, full: errReadsFull}, nil
}

// spool is one upload's blocks: first in memory, then, once its share or the budget is used
// up, in a temporary file. Blocks keep their order: once an upload spills, all its later
// blocks go to the file.
type spool struct {
	parent *Spools
	// floor and diskFloor are the memory and disk budget this spool leaves free (NewRead);
	// full is its error past the disk budget.
	floor, diskFloor int64
	full             error
	mem              []ecg.Block
	held             int64
	// onDisk is the disk budget this upload's file has taken.
	onDisk int64
	file   *os.File
	w      *bufio.Writer
	header []byte
	// bytes is the packed data put so far, in memory and in the file.
	bytes int64
	// read is set by Each: the upload is complete, and Each may run again (a retried unit of
	// work) but Put may not.
	read   bool
	closed bool
}

// Put keeps a copy of b.
func (s *spool) Put(b ecg.Block) error {
	if s.closed || s.read {
		return errors.New("ecgspool: put after the blocks were read back")
	}
	n := int64(len(b.Data))
	if s.file == nil && s.held+n <= s.parent.perItem && reserve(&s.parent.free, n, s.floor) {
		s.held += n
		s.bytes += n
		b.Data = append([]byte(nil), b.Data...)
		s.mem = append(s.mem, b)
		return nil
	}
	// A header takes at most 4 varints of 10 bytes.
	need := n + 4*binary.MaxVarintLen64
	if !reserve(&s.parent.diskFree, need, s.diskFloor) {
		return s.full
	}
	s.onDisk += need
	if s.file == nil {
		f, err := os.CreateTemp(s.parent.dir, filePattern)
		if err != nil {
			return unavailable(err)
		}
		s.file, s.w = f, bufio.NewWriterSize(f, 64<<10)
	}
	// Positions and counts, never negative.
	s.header = binary.AppendUvarint(s.header[:0], uint64(b.Lead)) //nolint:gosec // G115: see above
	s.header = binary.AppendUvarint(s.header, uint64(b.Seq))      //nolint:gosec // G115: see above
	s.header = binary.AppendUvarint(s.header, uint64(b.Samples))  //nolint:gosec // G115: see above
	s.header = binary.AppendUvarint(s.header, uint64(len(b.Data)))
	if _, err := s.w.Write(s.header); err != nil {
		return unavailable(err)
	}
	if _, err := s.w.Write(b.Data); err != nil {
		return unavailable(err)
	}
	s.bytes += n
	return nil
}

// Bytes is the packed data put so far.
func (s *spool) Bytes() int64 { return s.bytes }

// Each hands back every block in the order it was put; it may run more than once. The Data
// of a block is valid only during fn.
func (s *spool) Each(fn func(ecg.Block) error) error {
	s.read = true
	for _, b := range s.mem {
		if err := fn(b); err != nil {
			return err
		}
	}
	if s.file == nil {
		return nil
	}
	if err := s.w.Flush(); err != nil {
		return unavailable(err)
	}
	if _, err := s.file.Seek(0, io.SeekStart); err != nil {
		return unavailable(err)
	}
	r := bufio.NewReaderSize(s.file, 64<<10)
	var data []byte
	for {
		var h [4]uint64
		for i := range h {
			v, err := binary.ReadUvarint(r)
			if errors.Is(err, io.EOF) && i == 0 {
				return nil
			}
			if err != nil {
				return unavailable(err)
			}
			h[i] = v
		}
		if h[3] > ecg.MaxBlockBytes {
			return unavailable(fmt.Errorf("block of %d bytes in the spool file", h[3]))
		}
		if uint64(cap(data)) < h[3] {
			data = make([]byte, h[3])
		}
		data = data[:h[3]]
		if _, err := io.ReadFull(r, data); err != nil {
			return unavailable(err)
		}
		// This process wrote the header from ints (Put).
		b := ecg.Block{Lead: int(h[0]), Seq: int(h[1]), Samples: int(h[2]), Data: data} //nolint:gosec // G115: see above
		if err := fn(b); err != nil {
			return err
		}
	}
}

// Close gives the memory back and removes the file.
func (s *spool) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.parent.free.Add(s.held)
	s.parent.diskFree.Add(s.onDisk)
	s.held, s.mem, s.onDisk = 0, nil, 0
	if s.file == nil {
		return nil
	}
	name := s.file.Name()
	err := s.file.Close()
	if rerr := os.Remove(name); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return err
}

// unavailable reports a spool that cannot keep an upload (a full or failing disk) as the
// service being unable to take it now, never as the client's fault.
func unavailable(err error) error {
	return fmt.Errorf("%w: ecgspool: %w", domain.ErrUnavailable, err)
}
