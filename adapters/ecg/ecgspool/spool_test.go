package ecgspool

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acme/postsvc/adapters/system"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/ecg/ecg"
)

func block(lead, seq, size int) ecg.Block {
	data := bytes.Repeat([]byte{byte(lead*31 + seq)}, size)
	return ecg.Block{Lead: lead, Seq: seq, Samples: size / 2, Data: data}
}

func spoolFiles(t *testing.T, sp *Spools) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(sp.dir, filePattern))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// collect reads a spool back.
func collect(t *testing.T, s interface {
	Each(func(ecg.Block) error) error
}) []ecg.Block {
	t.Helper()
	var out []ecg.Block
	err := s.Each(func(b ecg.Block) error {
		b.Data = append([]byte(nil), b.Data...)
		out = append(out, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func equalBlocks(t *testing.T, got, want []ecg.Block) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d blocks back, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Lead != w.Lead || g.Seq != w.Seq || g.Samples != w.Samples || !bytes.Equal(g.Data, w.Data) {
			t.Fatalf("block %d: got lead %d seq %d samples %d (%d bytes), want lead %d seq %d samples %d (%d bytes)",
				i, g.Lead, g.Seq, g.Samples, len(g.Data), w.Lead, w.Seq, w.Samples, len(w.Data))
		}
	}
}

// TestSmallUploadStaysInMemory: an upload within its share never creates a file, and gives
// its memory back on Close.
func TestSmallUploadStaysInMemory(t *testing.T) {
	sp, err := New(Settings{Memory: 16 << 20, Dir: t.TempDir(), Disk: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := sp.New()
	want := []ecg.Block{block(0, 0, 1000), block(1, 0, 2000), block(1, 1, 10)}
	for _, b := range want {
		put := b
		put.Data = append([]byte(nil), b.Data...)
		if err := s.Put(put); err != nil {
			t.Fatal(err)
		}
		put.Data[0] ^= 0xff // the caller reuses its buffers: the spool must have copied
	}
	if files := spoolFiles(t, sp); len(files) != 0 {
		t.Fatalf("files %v for a small upload", files)
	}
	if sp.Free() != 16<<20-3010 {
		t.Fatalf("free %d, want %d", sp.Free(), 16<<20-3010)
	}
	equalBlocks(t, collect(t, s), want)
	equalBlocks(t, collect(t, s), want) // Each may run again (a retried unit of work)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if sp.Free() != 16<<20 {
		t.Fatalf("free %d after close, want all of it", sp.Free())
	}
}

// TestLargeUploadSpillsInOrder: past its share an upload goes to a file, blocks come back in
// the order they were put across memory and file, and Close removes the file.
func TestLargeUploadSpillsInOrder(t *testing.T) {
	sp, err := New(Settings{Memory: 16 * 4096, Dir: t.TempDir(), Disk: 1 << 30}) // a share of 4096 bytes
	if err != nil {
		t.Fatal(err)
	}
	s, _ := sp.New()
	var want []ecg.Block
	for lead := range 3 {
		for seq := range 4 {
			b := block(lead, seq, 1500)
			want = append(want, block(lead, seq, 1500))
			if err := s.Put(b); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(spoolFiles(t, sp)) != 1 {
		t.Fatalf("want one spool file, have %v", spoolFiles(t, sp))
	}
	if held := 16*4096 - sp.Free(); held > 4096 {
		t.Fatalf("one upload holds %d bytes of memory, its share is 4096", held)
	}
	// What the quota counts: the blocks' data, in memory and in the file alike.
	if n := s.Bytes(); n != 3*4*1500 {
		t.Fatalf("Bytes = %d, want %d", n, 3*4*1500)
	}
	equalBlocks(t, collect(t, s), want)
	equalBlocks(t, collect(t, s), want)
	if err := s.Put(block(9, 0, 10)); err == nil {
		t.Fatal("Put after Each: want an error")
	}
	if n := s.Bytes(); n != 3*4*1500 {
		t.Fatalf("Bytes after a refused Put = %d, want %d", n, 3*4*1500)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if files := spoolFiles(t, sp); len(files) != 0 {
		t.Fatalf("files left after close: %v", files)
	}
	if sp.Free() != 16*4096 {
		t.Fatalf("free %d after close", sp.Free())
	}
}

// TestSharedBudgetBoundsAllUploads: when other uploads hold the budget, a new one spills at
// once rather than exceed it.
func TestSharedBudgetBoundsAllUploads(t *testing.T) {
	sp, err := New(Settings{Memory: 16 * 1000, Dir: t.TempDir(), Disk: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	var open []interface{ Close() error }
	for range 20 {
		s, _ := sp.New()
		open = append(open, s)
		if err := s.Put(block(0, 0, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	if sp.Free() != 0 {
		t.Fatalf("free %d: 16 uploads fill the budget, the other 4 spill", sp.Free())
	}
	if n := len(spoolFiles(t, sp)); n != 4 {
		t.Fatalf("%d spool files, want 4", n)
	}
	for _, s := range open {
		_ = s.Close()
	}
	if sp.Free() != 16*1000 {
		t.Fatalf("free %d after every upload closed", sp.Free())
	}
}

// TestStaleFilesRemovedAtStart: files a killed process left are removed when they are old,
// and a fresh one (another process's upload in progress) is kept.
func TestStaleFilesRemovedAtStart(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "postsvc-ecg-spool")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(dir, "ecg-upload-1.spool")
	fresh := filepath.Join(dir, "ecg-upload-2.spool")
	other := filepath.Join(dir, "notes.txt")
	for _, f := range []string{old, fresh, other} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-2 * staleAfter)
	for _, f := range []string{old, other} {
		if err := os.Chtimes(f, past, past); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := New(Settings{Memory: 1 << 20, Dir: base, Disk: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale spool file kept: %v", err)
	}
	for _, f := range []string{fresh, other} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("%s removed: %v", f, err)
		}
	}
}

// TestUnwritableSpoolIsUnavailable: a spool that cannot write its file reports the service as
// unavailable (503), not the client's fault.
func TestUnwritableSpoolIsUnavailable(t *testing.T) {
	sp, err := New(Settings{Memory: 16, Dir: t.TempDir(), Disk: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(sp.dir); err != nil {
		t.Fatal(err)
	}
	s, _ := sp.New()
	defer func() { _ = s.Close() }()
	if err := s.Put(block(0, 0, 100)); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("Put with the folder gone: %v, want ErrUnavailable", err)
	}
}

// TestDiskBudgetBoundsAllUploads: what the uploads being received write to their files is
// bounded for all of them together; an upload that would pass the budget is refused as
// overloaded (the service is busy, not broken), and a closed upload gives its share back.
func TestDiskBudgetBoundsAllUploads(t *testing.T) {
	sp, err := New(Settings{Memory: 16, Dir: t.TempDir(), Disk: 3000}) // every block goes to disk
	if err != nil {
		t.Fatal(err)
	}
	a, _ := sp.New()
	b, _ := sp.New()
	if err := a.Put(block(0, 0, 1000)); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(block(0, 0, 1000)); err != nil {
		t.Fatal(err)
	}
	err = a.Put(block(0, 1, 1000))
	if !errors.Is(err, domain.ErrOverloaded) {
		t.Fatalf("a third 1000-byte block within a 3000-byte disk budget (headers included): %v, want overloaded", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Put(block(0, 1, 1000)); err != nil {
		t.Fatalf("after another upload ended: %v", err)
	}
	if got := collect(t, a); len(got) != 2 || got[1].Seq != 1 {
		t.Fatalf("read back %d blocks", len(got))
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if sp.DiskFree() != 3000 {
		t.Fatalf("disk budget after every upload ended: %d, want 3000", sp.DiskFree())
	}
}

// TestReadsLeaveUploadsHalfOfTheBudgets: spools of ECGs read back (held while a slow client is
// sent its answer) together take at most half of the disk budget, and spill to disk once half
// of the memory budget is taken; uploads may still take all that is left.
func TestReadsLeaveUploadsHalfOfTheBudgets(t *testing.T) {
	// A memory share of 2000 bytes a spool, 32000 in all; 8000 bytes of disk.
	sp, err := New(Settings{Memory: 16 * 2000, Dir: t.TempDir(), Disk: 8000})
	if err != nil {
		t.Fatal(err)
	}
	var reads []interface{ Close() error }
	defer func() {
		for _, r := range reads {
			_ = r.Close()
		}
	}()
	// Memory: reads take their shares while half the budget (16000) stays free: 8 reads of
	// 2000 bytes; a ninth spills to its file.
	for i := range 8 {
		r, _ := sp.NewRead()
		reads = append(reads, r)
		if err := r.Put(block(0, 0, 2000)); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	if sp.Free() != 16000 || len(spoolFiles(t, sp)) != 0 {
		t.Fatalf("after 8 reads of a share each: %d bytes of memory free, %d files; want 16000 and none", sp.Free(), len(spoolFiles(t, sp)))
	}
	r, _ := sp.NewRead()
	reads = append(reads, r)
	if err := r.Put(block(0, 0, 1000)); err != nil {
		t.Fatal(err)
	}
	if sp.Free() != 16000 || len(spoolFiles(t, sp)) != 1 {
		t.Fatalf("a read past half the memory: %d bytes of memory free, %d files; want 16000 and its file", sp.Free(), len(spoolFiles(t, sp)))
	}
	// Disk: that read holds 1040 bytes of the 4000 reads may take; 2 blocks more fit, a third not.
	for seq := 1; seq <= 2; seq++ {
		if err := r.Put(block(0, seq, 1000)); err != nil {
			t.Fatalf("block %d of the read: %v", seq, err)
		}
	}
	err = r.Put(block(0, 3, 1000))
	if !errors.Is(err, domain.ErrOverloaded) || !strings.Contains(err.Error(), "reads' half") {
		t.Fatalf("a read past half the disk budget: %v, want overloaded naming the reads' half", err)
	}
	// An upload still has the memory and the disk the reads left, past the reads' floor: its
	// share of memory, then four 1040-byte blocks of the 4880 bytes of disk left.
	up, _ := sp.New()
	defer up.Close()
	if err := up.Put(block(1, 0, 2000)); err != nil {
		t.Fatal(err)
	}
	if sp.Free() != 14000 {
		t.Fatalf("the upload's first block is not in memory: %d bytes free, want 14000", sp.Free())
	}
	for seq := 1; seq <= 4; seq++ {
		if err := up.Put(block(1, seq, 1000)); err != nil {
			t.Fatalf("upload block %d (on the disk the reads left): %v", seq, err)
		}
	}
	if sp.DiskFree() != 8000-3*1040-4*1040 {
		t.Fatalf("disk free after the upload: %d, want %d", sp.DiskFree(), 8000-3*1040-4*1040)
	}
	for _, r := range reads {
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	reads = nil
	if err := up.Close(); err != nil {
		t.Fatal(err)
	}
	if sp.Free() != 32000 || sp.DiskFree() != 8000 {
		t.Fatalf("budgets after every spool closed: %d memory, %d disk; want 32000 and 8000", sp.Free(), sp.DiskFree())
	}
}

// TestSpoolChildProcess is the process TestKilledProcessSpoolRemovedAtRestart kills: run with
// ECGSPOOL_CHILD_BASE set, it spools an upload to disk in that folder, prints the file's path
// and waits to be killed.
func TestSpoolChildProcess(t *testing.T) {
	base := os.Getenv("ECGSPOOL_CHILD_BASE")
	if base == "" {
		t.Skip("the child of TestKilledProcessSpoolRemovedAtRestart")
	}
	sp, err := New(Settings{Memory: 16, Dir: base, Disk: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := sp.New()
	if err := s.Put(block(0, 0, 1000)); err != nil {
		t.Fatal(err)
	}
	files := spoolFiles(t, sp)
	if len(files) != 1 {
		t.Fatalf("%d spool files", len(files))
	}
	fmt.Println("spooled", files[0])
	time.Sleep(time.Minute)
}

// TestKilledProcessSpoolRemovedAtRestart: a process killed with SIGKILL while it receives an
// upload leaves its spool file behind; the next process to start removes it at once (its
// owner's lock is free), where before it waited an hour (an outside probe's crash loop piled
// up 12 to 21 MB a killed upload). The folder of a process still running is left alone.
func TestKilledProcessSpoolRemovedAtRestart(t *testing.T) {
	if !system.FileLocksEnforced {
		t.Skip("no flock here: leftovers go by age")
	}
	base := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSpoolChildProcess$", "-test.v") //nolint:gosec // G204: the test binary itself
	cmd.Env = append(os.Environ(), "ECGSPOOL_CHILD_BASE="+base)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var file string
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if rest, ok := strings.CutPrefix(lines.Text(), "spooled "); ok {
			file = rest
			break
		}
	}
	if file == "" {
		t.Fatal("the child spooled nothing")
	}
	// The child runs: a process starting beside it keeps its file.
	first, err := New(Settings{Memory: 1 << 20, Dir: base, Disk: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("a running process's spool file was removed: %v", err)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("the killed process's file is already gone: %v", err)
	}
	sp, err := New(Settings{Memory: 1 << 20, Dir: base, Disk: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(file)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the killed process's spool folder is still there: %v", err)
	}
	// This process's first folder (its lock still held) and its new one are kept.
	owners, _ := filepath.Glob(filepath.Join(base, "postsvc-ecg-spool", ownerPattern))
	if len(owners) != 2 || !slices.Contains(owners, sp.dir) {
		t.Fatalf("owner folders %v, want this process's two, %s among them", owners, sp.dir)
	}
	runtime.KeepAlive(first) // its lock file must not be closed by the collector meanwhile
}
