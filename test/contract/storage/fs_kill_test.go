package storage_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acme/postsvc/adapters/storage/fsstore"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/test/contract/storage"
)

// The child process of TestFilesystemPutKilled reads what to do from these variables.
const (
	envKillChild = "STORAGE_KILL_CHILD"
	envKillDir   = "STORAGE_KILL_DIR"
	killKey      = "images/victim/original"
	// The child writes this much, says so, then waits to be killed.
	killWritten = 6 << 20
	midPutLine  = "MID-PUT"
)

// TestFilesystemPutKilled runs a large Put in a separate process and SIGKILLs it half way
// through, once over an existing object and once under a new key: the key then holds the
// old object or nothing (never part of the new one), List reports no temporary, and the
// sweep removes what the killed upload left.
func TestFilesystemPutKilled(t *testing.T) {
	if os.Getenv(envKillChild) == "1" {
		runKillChild(t)
		return
	}
	for _, existing := range []bool{false, true} {
		t.Run(fmt.Sprintf("existing=%t", existing), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "media")
			s, err := fsstore.New(dir, fsstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			old := storage.RandomBytes(1000, 1)
			if existing {
				if _, err := s.Put(t.Context(), killKey, bytes.NewReader(old), int64(len(old)), ""); err != nil {
					t.Fatal(err)
				}
			}
			_ = s.Close()

			child := startKillChild(t, "TestFilesystemPutKilled", envKillChild+"=1", envKillDir+"="+dir)
			// Half way: the temporary is there, with what the child wrote.
			tmps, err := os.ReadDir(filepath.Join(dir, "tmp"))
			if err != nil || len(tmps) != 1 {
				t.Fatalf("want one temporary mid-put, found %v (%v)", tmps, err)
			}
			if info, err := tmps[0].Info(); err != nil || info.Size() != killWritten {
				t.Fatalf("the temporary holds %v bytes (%v), want the %d written so far", info.Size(), err, killWritten)
			}
			if err := child.Process.Kill(); err != nil { // SIGKILL: no cleanup runs in the child
				t.Fatal(err)
			}
			_ = child.Wait()

			// Reopen without the start-up sweep, to see what the crash left.
			s, err = fsstore.New(dir, fsstore.Options{StaleAge: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = s.Close() }()
			if existing {
				o, err := s.Open(t.Context(), killKey)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(o)
				_ = o.Close()
				if !bytes.Equal(got, old) {
					t.Fatalf("the key holds %d bytes after the kill, want the old %d", len(got), len(old))
				}
			} else if _, err := s.Stat(t.Context(), killKey); !errors.Is(err, ports.ErrObjectNotFound) {
				t.Fatalf("the key holds something after a killed put: %v", err)
			}
			var listed []string
			if err := s.List(t.Context(), "", func(info ports.ObjectInfo) error {
				listed = append(listed, info.Key)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			want := 0
			if existing {
				want = 1
			}
			if len(listed) != want {
				t.Fatalf("list after the kill: %v (the temporary must never be listed)", listed)
			}
			n, err := s.Sweep(t.Context(), 0)
			if err != nil || n != 1 {
				t.Fatalf("sweep removed %d, %v; want the killed upload's temporary", n, err)
			}
		})
	}
}

// runKillChild writes killWritten bytes of a Put, prints midPutLine once they are in the
// temporary file, and blocks until it is killed.
func runKillChild(t *testing.T) {
	s, err := fsstore.New(os.Getenv(envKillDir), fsstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := io.MultiReader(bytes.NewReader(storage.RandomBytes(killWritten, 2)), announceThenBlock{})
	_, err = s.Put(t.Context(), killKey, r, -1, "")
	t.Fatalf("the put returned (%v); it should have been killed", err)
}

// announceThenBlock is read once the first part of the body is written: it says so and
// never returns.
type announceThenBlock struct{}

func (announceThenBlock) Read([]byte) (int, error) {
	fmt.Println(midPutLine)
	time.Sleep(time.Hour)
	return 0, errors.New("not killed")
}

// startKillChild starts this test binary again running only test, with env added, and
// returns once the child reports that its put is half way (midPutLine); the caller kills it.
func startKillChild(t *testing.T, test string, env ...string) *exec.Cmd {
	t.Helper()
	child := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^"+test+"$", "-test.v")
	child.Env = append(os.Environ(), env...)
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = child.Stdout
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	mid := make(chan struct{})
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), midPutLine) {
				close(mid)
			}
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	select {
	case <-mid:
		return child
	case <-time.After(60 * time.Second):
		_ = child.Process.Kill()
		_ = child.Wait()
		var out strings.Builder
		for l := range lines {
			out.WriteString(l + "\n")
		}
		t.Fatalf("the child never got half way through its put:\n%s", out.String())
		return nil
	}
}
