package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/test/contract"
)

// LargeSize is the size of the large-object tests: more than two 8 MiB parts, so the S3 store
// uploads it in three parts, the last one short.
const LargeSize = 20 << 20

// RandomBytes returns n reproducible pseudo-random bytes (incompressible, unlike zeros).
func RandomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	r := rand.NewChaCha8(key)
	_, _ = r.Read(b)
	return b
}

func put(t *testing.T, s ports.ObjectStore, key string, data []byte) {
	t.Helper()
	n, err := s.Put(t.Context(), key, bytes.NewReader(data), int64(len(data)), "application/octet-stream")
	contract.NoErr(t, "put "+key, err)
	if n != int64(len(data)) {
		t.Fatalf("put %s: stored %d bytes, want %d", key, n, len(data))
	}
}

func readAll(t *testing.T, s ports.ObjectStore, key string) []byte {
	t.Helper()
	o, err := s.Open(t.Context(), key)
	contract.NoErr(t, "open "+key, err)
	defer func() { contract.NoErr(t, "close", o.Close()) }()
	b, err := io.ReadAll(o)
	contract.NoErr(t, "read "+key, err)
	if o.Info().Size != int64(len(b)) || o.Info().Key != key {
		t.Fatalf("open %s: info %+v, read %d bytes", key, o.Info(), len(b))
	}
	return b
}

func wantContent(t *testing.T, s ports.ObjectStore, key string, want []byte) {
	t.Helper()
	got := readAll(t, s, key)
	if sha256.Sum256(got) != sha256.Sum256(want) {
		t.Fatalf("%s: read %d bytes that differ from the %d stored", key, len(got), len(want))
	}
}

func wantMissing(t *testing.T, s ports.ObjectStore, key string) {
	t.Helper()
	_, err := s.Stat(t.Context(), key)
	contract.WantErr(t, "stat "+key, err, ports.ErrObjectNotFound)
	_, err = s.Open(t.Context(), key)
	contract.WantErr(t, "open "+key, err, ports.ErrObjectNotFound)
}

func listKeys(t *testing.T, s ports.ObjectStore, prefix string) []string {
	t.Helper()
	var keys []string
	contract.NoErr(t, "list "+prefix, s.List(t.Context(), prefix, func(info ports.ObjectInfo) error {
		keys = append(keys, info.Key)
		return nil
	}))
	slices.Sort(keys)
	return keys
}

func wantNoLeftovers(t *testing.T, b Backend) {
	t.Helper()
	if keys := listKeys(t, b.Store, ""); len(keys) != 0 {
		t.Fatalf("the store holds %v, want nothing", keys)
	}
	if b.Leftovers != nil {
		if n := b.Leftovers(t); n != 0 {
			t.Fatalf("%d leftovers of failed uploads remain, want none", n)
		}
	}
}

var readWriteTests = []contract.Test[Backend]{
	{Name: "PutOpenReadStat", Run: func(t *testing.T, b Backend) {
		data := []byte("hello, object storage")
		before := time.Now().Add(-time.Minute)
		put(t, b.Store, "images/1/original", data)
		wantContent(t, b.Store, "images/1/original", data)
		info, err := b.Store.Stat(t.Context(), "images/1/original")
		contract.NoErr(t, "stat", err)
		if info.Key != "images/1/original" || info.Size != int64(len(data)) {
			t.Fatalf("stat: %+v", info)
		}
		if info.Modified.Before(before) || info.Modified.After(time.Now().Add(time.Minute)) {
			t.Fatalf("modified %v is not about now", info.Modified)
		}
		contract.NoErr(t, "check", b.Store.Check(t.Context()))
	}},
	{Name: "UnknownSizeAndEmpty", Run: func(t *testing.T, b Backend) {
		data := RandomBytes(100_000, 1)
		n, err := b.Store.Put(t.Context(), "u", io.MultiReader(bytes.NewReader(data[:7]), bytes.NewReader(data[7:])), -1, "")
		contract.NoErr(t, "put of unknown size", err)
		if n != int64(len(data)) {
			t.Fatalf("stored %d, want %d", n, len(data))
		}
		wantContent(t, b.Store, "u", data)
		n, err = b.Store.Put(t.Context(), "empty", strings.NewReader(""), 0, "")
		contract.NoErr(t, "put empty", err)
		if n != 0 {
			t.Fatalf("empty: %d", n)
		}
		if got := readAll(t, b.Store, "empty"); len(got) != 0 {
			t.Fatalf("empty object read %d bytes", len(got))
		}
		_, err = b.Store.Put(t.Context(), "empty2", strings.NewReader(""), -1, "")
		contract.NoErr(t, "put empty of unknown size", err)
		wantContent(t, b.Store, "empty2", nil)
	}},
	{Name: "SeekAndRange", Run: func(t *testing.T, b Backend) {
		data := RandomBytes(1<<20+17, 2)
		put(t, b.Store, "r", data)
		o, err := b.Store.Open(t.Context(), "r")
		contract.NoErr(t, "open", err)
		defer func() { _ = o.Close() }()
		end, err := o.Seek(0, io.SeekEnd)
		if err != nil || end != int64(len(data)) {
			t.Fatalf("seek to end: %d, %v", end, err)
		}
		for _, c := range []struct {
			off    int64
			whence int
			at     int64
			n      int
		}{
			{1000, io.SeekStart, 1000, 5000},
			{-100, io.SeekCurrent, 5900, 300},
			{-10, io.SeekEnd, int64(len(data)) - 10, 10},
			{0, io.SeekStart, 0, 64},
			{512 << 10, io.SeekStart, 512 << 10, 4096},
		} {
			pos, err := o.Seek(c.off, c.whence)
			if err != nil || pos != c.at {
				t.Fatalf("seek(%d, %d) = %d, %v; want %d", c.off, c.whence, pos, err, c.at)
			}
			got := make([]byte, c.n)
			if _, err := io.ReadFull(o, got); err != nil || !bytes.Equal(got, data[c.at:c.at+int64(c.n)]) {
				t.Fatalf("%d bytes at %d: %v or different bytes", c.n, c.at, err)
			}
		}
		if _, err := o.Seek(0, io.SeekEnd); err != nil {
			t.Fatal(err)
		}
		if n, err := o.Read(make([]byte, 10)); n != 0 || !errors.Is(err, io.EOF) {
			t.Fatalf("read at the end: %d, %v; want 0, EOF", n, err)
		}

		// What the HTTP layer does with it: http.ServeContent answers a Range request.
		o2, err := b.Store.Open(t.Context(), "r")
		contract.NoErr(t, "open", err)
		defer func() { _ = o2.Close() }()
		req := httptest.NewRequest(http.MethodGet, "/content", nil)
		req.Header.Set("Range", "bytes=1000000-1000099")
		rec := httptest.NewRecorder()
		http.ServeContent(rec, req, "", o2.Info().Modified, o2)
		if rec.Code != http.StatusPartialContent || !bytes.Equal(rec.Body.Bytes(), data[1000000:1000100]) {
			t.Fatalf("range request: %d, %d bytes", rec.Code, rec.Body.Len())
		}
		if got := rec.Header().Get("Content-Range"); got != fmt.Sprintf("bytes 1000000-1000099/%d", len(data)) {
			t.Fatalf("Content-Range %q", got)
		}

		// A store whose objects take a bound on reads (ports.ReadBounder) gives the same bytes
		// within it and past it.
		o3, err := b.Store.Open(t.Context(), "r")
		contract.NoErr(t, "open", err)
		defer func() { _ = o3.Close() }()
		if bounder, ok := o3.(ports.ReadBounder); ok {
			bounder.BoundReads(2100)
			if _, err := o3.Seek(2000, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 300) // 100 within the bound, 200 past it
			if _, err := io.ReadFull(o3, got); err != nil || !bytes.Equal(got, data[2000:2300]) {
				t.Fatalf("300 bytes across the read bound at 2100: %v or different bytes", err)
			}
		}
	}},
	{Name: "Overwrite", Run: func(t *testing.T, b Backend) {
		put(t, b.Store, "k", RandomBytes(5000, 3))
		second := []byte("shorter")
		put(t, b.Store, "k", second)
		wantContent(t, b.Store, "k", second)
		info, err := b.Store.Stat(t.Context(), "k")
		if err != nil || info.Size != int64(len(second)) {
			t.Fatalf("stat after overwrite: %+v, %v", info, err)
		}
		if keys := listKeys(t, b.Store, ""); !slices.Equal(keys, []string{"k"}) {
			t.Fatalf("list after overwrite: %v", keys)
		}
	}},
	{Name: "MissingAndDelete", Run: func(t *testing.T, b Backend) {
		wantMissing(t, b.Store, "nothing/here")
		contract.NoErr(t, "delete of a missing object", b.Store.Delete(t.Context(), "nothing/here"))
		put(t, b.Store, "d/x", []byte("x"))
		put(t, b.Store, "d/y", []byte("y"))
		contract.NoErr(t, "delete", b.Store.Delete(t.Context(), "d/x"))
		wantMissing(t, b.Store, "d/x")
		contract.NoErr(t, "delete again", b.Store.Delete(t.Context(), "d/x"))
		wantContent(t, b.Store, "d/y", []byte("y"))
		contract.NoErr(t, "delete", b.Store.Delete(t.Context(), "d/y"))
		if keys := listKeys(t, b.Store, ""); len(keys) != 0 {
			t.Fatalf("list after deleting everything: %v", keys)
		}
		put(t, b.Store, "d/x", []byte("again"))
		wantContent(t, b.Store, "d/x", []byte("again"))
	}},
	{Name: "LargeObjectRoundTrip", Run: func(t *testing.T, b Backend) {
		data := RandomBytes(LargeSize, 4)
		// Known size, then unknown size (a reader that is not a bytes.Reader).
		put(t, b.Store, "large/known", data)
		n, err := b.Store.Put(t.Context(), "large/unknown", struct{ io.Reader }{bytes.NewReader(data)}, -1, "image/png")
		contract.NoErr(t, "put of unknown size", err)
		if n != LargeSize {
			t.Fatalf("stored %d, want %d", n, LargeSize)
		}
		for _, key := range []string{"large/known", "large/unknown"} {
			wantContent(t, b.Store, key, data)
			o, err := b.Store.Open(t.Context(), key)
			contract.NoErr(t, "open", err)
			// Across the first part boundary (8 MiB), and the tail.
			for _, at := range []int64{8<<20 - 3, LargeSize - 5} {
				if _, err := o.Seek(at, io.SeekStart); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, 5)
				if _, err := io.ReadFull(o, got); err != nil || !bytes.Equal(got, data[at:at+5]) {
					t.Fatalf("%s at %d: %v", key, at, err)
				}
			}
			contract.NoErr(t, "close", o.Close())
		}
		wantNoLeftovers(t, Backend{Store: emptyStore{}, Leftovers: b.Leftovers})
	}},
}

var allOrNothingTests = []contract.Test[Backend]{
	{Name: "CancelledPutLeavesNothing", Run: func(t *testing.T, b Backend) {
		for _, size := range []int{64 << 10, 12 << 20} {
			ctx, cancel := context.WithCancel(t.Context())
			data := RandomBytes(size, 5)
			r := &hookReader{r: bytes.NewReader(data), at: int64(size) * 3 / 4, hook: cancel}
			_, err := b.Store.Put(ctx, "c", r, -1, "")
			cancel()
			if err == nil {
				t.Fatalf("%d bytes: a put whose context was cancelled half way succeeded", size)
			}
			wantMissing(t, b.Store, "c")
			wantNoLeftovers(t, b)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := b.Store.Put(ctx, "c", strings.NewReader("x"), 1, ""); err == nil {
			t.Fatal("a put with a cancelled context succeeded")
		}
		wantNoLeftovers(t, b)
	}},
	{Name: "ReaderErrorLeavesNothing", Run: func(t *testing.T, b Backend) {
		for _, size := range []int{64 << 10, 12 << 20} {
			boom := errors.New("client went away")
			r := io.MultiReader(bytes.NewReader(RandomBytes(size, 6)), errReader{boom})
			_, err := b.Store.Put(t.Context(), "e", r, -1, "")
			if !errors.Is(err, boom) {
				t.Fatalf("%d bytes: put with a failing reader: %v, want the reader's error", size, err)
			}
			wantMissing(t, b.Store, "e")
			wantNoLeftovers(t, b)
		}
	}},
	{Name: "SizeMismatchLeavesNothing", Run: func(t *testing.T, b Backend) {
		for _, c := range []struct{ have, announced int }{{100, 200}, {200, 100}, {12 << 20, 13 << 20}, {9 << 20, 8 << 20}} {
			_, err := b.Store.Put(t.Context(), "m", bytes.NewReader(RandomBytes(c.have, 7)), int64(c.announced), "")
			if err == nil {
				t.Fatalf("a body of %d bytes announced as %d was stored", c.have, c.announced)
			}
			wantMissing(t, b.Store, "m")
			wantNoLeftovers(t, b)
		}
	}},
	{Name: "FailedOverwriteKeepsTheOldObject", Run: func(t *testing.T, b Backend) {
		old := RandomBytes(3000, 8)
		put(t, b.Store, "keep", old)
		for _, size := range []int{64 << 10, 12 << 20} {
			r := io.MultiReader(bytes.NewReader(RandomBytes(size, 9)), errReader{errors.New("boom")})
			if _, err := b.Store.Put(t.Context(), "keep", r, -1, ""); err == nil {
				t.Fatal("a failing put succeeded")
			}
			wantContent(t, b.Store, "keep", old)
		}
		if b.Leftovers != nil && b.Leftovers(t) != 0 {
			t.Fatal("a failed overwrite left a temporary or an unfinished upload")
		}
	}},
}

var listTests = []contract.Test[Backend]{
	{Name: "ByPrefix", Run: func(t *testing.T, b Backend) {
		all := []string{"a/1", "a/2", "a/b/3", "ab/4", "b/5", "top"}
		for i, k := range all {
			put(t, b.Store, k, bytes.Repeat([]byte{'x'}, i+1))
		}
		for _, c := range []struct {
			prefix string
			want   []string
		}{
			{"", all},
			{"a/", []string{"a/1", "a/2", "a/b/3"}},
			{"a", []string{"a/1", "a/2", "a/b/3", "ab/4"}},
			{"a/b", []string{"a/b/3"}},
			{"a/b/", []string{"a/b/3"}},
			{"t", []string{"top"}},
			{"top", []string{"top"}},
			{"c/", nil},
			{"a/1/", nil},
			{"zz", nil},
		} {
			if got := listKeys(t, b.Store, c.prefix); !slices.Equal(got, c.want) {
				t.Errorf("list %q = %v, want %v", c.prefix, got, c.want)
			}
		}
		sizes := map[string]int64{}
		contract.NoErr(t, "list", b.Store.List(t.Context(), "", func(info ports.ObjectInfo) error {
			sizes[info.Key] = info.Size
			if info.Modified.IsZero() {
				t.Errorf("%s listed without a modification time", info.Key)
			}
			return nil
		}))
		for i, k := range all {
			if sizes[k] != int64(i+1) {
				t.Errorf("%s listed with size %d, want %d", k, sizes[k], i+1)
			}
		}
		stop := errors.New("stop")
		calls := 0
		err := b.Store.List(t.Context(), "", func(ports.ObjectInfo) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Fatalf("list must stop at fn's first error and return it: %v after %d calls", err, calls)
		}
	}},
}

// ForgedKeys are keys the stores must refuse: traversal, absolute paths, empty segments,
// characters outside the key alphabet, and one byte too long.
var ForgedKeys = []string{
	"", "../x", "../../etc/passwd", "a/../../x", "/abs", "/etc/passwd", "a//b", "a/", "./a", "a/./b", ".", "..",
	`a\b`, `..\x`, "a b", "a\x00b", "a\nb", "é", "a%2F..%2Fb", "a?b", "a#b", "~/x",
	strings.Repeat("k", ports.MaxObjectKeyBytes+1),
}

var keyTests = []contract.Test[Backend]{
	{Name: "ForgedKeysAreRefused", Run: func(t *testing.T, b Backend) {
		for _, key := range ForgedKeys {
			if _, err := b.Store.Put(t.Context(), key, strings.NewReader("forged"), 6, ""); err == nil {
				t.Errorf("put %q succeeded", key)
			}
			if o, err := b.Store.Open(t.Context(), key); err == nil || errors.Is(err, ports.ErrObjectNotFound) {
				if o != nil {
					_ = o.Close()
				}
				t.Errorf("open %q: %v, want a refusal that is not 'not found'", key, err)
			}
			if _, err := b.Store.Stat(t.Context(), key); err == nil || errors.Is(err, ports.ErrObjectNotFound) {
				t.Errorf("stat %q: %v, want a refusal", key, err)
			}
			if err := b.Store.Delete(t.Context(), key); err == nil {
				t.Errorf("delete %q succeeded", key)
			}
		}
		for _, prefix := range []string{"/", "../", "a/../", "/etc", "a//", `..\`} {
			if err := b.Store.List(t.Context(), prefix, func(ports.ObjectInfo) error { return nil }); err == nil {
				t.Errorf("list %q succeeded", prefix)
			}
		}
		wantNoLeftovers(t, b)
		if b.Outside != nil {
			if files := b.Outside(t); len(files) != 0 {
				t.Fatalf("forged keys created files outside the store: %v", files)
			}
		}
		// The longest allowed key works (in segments that file systems take: 255 bytes at most).
		long := strings.Repeat("k", 200) + "/" + strings.Repeat("l", 200) + "/" + strings.Repeat("m", ports.MaxObjectKeyBytes-402)
		put(t, b.Store, long, []byte("long"))
		wantContent(t, b.Store, long, []byte("long"))
	}},
}

var concurrencyTests = []contract.Test[Backend]{
	{Name: "ConcurrentPutsOfDifferentKeys", Run: func(t *testing.T, b Backend) {
		const n = 16
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				data := RandomBytes(50_000+i, uint64(100+i))
				key := fmt.Sprintf("conc/%d/obj", i%4) + fmt.Sprint(i)
				if _, err := b.Store.Put(t.Context(), key, bytes.NewReader(data), -1, ""); err != nil {
					errs <- fmt.Errorf("put %s: %w", key, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for i := range n {
			wantContent(t, b.Store, fmt.Sprintf("conc/%d/obj", i%4)+fmt.Sprint(i), RandomBytes(50_000+i, uint64(100+i)))
		}
		if keys := listKeys(t, b.Store, "conc/"); len(keys) != n {
			t.Fatalf("listed %d objects, want %d: %v", len(keys), n, keys)
		}
	}},
	{Name: "ConcurrentPutsOfOneKeyNeverMix", Run: func(t *testing.T, b Backend) {
		const n = 8
		versions := make([][]byte, n)
		for i := range versions {
			versions[i] = RandomBytes(200_000, uint64(200+i))
		}
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				if _, err := b.Store.Put(t.Context(), "same", bytes.NewReader(versions[i]), -1, ""); err != nil {
					t.Errorf("put %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		got := readAll(t, b.Store, "same")
		if !slices.ContainsFunc(versions, func(v []byte) bool { return bytes.Equal(v, got) }) {
			t.Fatal("the object is none of the versions put: writes were mixed")
		}
		if b.Leftovers != nil && b.Leftovers(t) != 0 {
			t.Fatal("concurrent puts left temporaries")
		}
	}},
}

// hookReader calls hook once when the read position passes at.
type hookReader struct {
	r    io.Reader
	at   int64
	pos  int64
	hook func()
	done bool
}

func (h *hookReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.pos += int64(n)
	if !h.done && h.pos >= h.at {
		h.done = true
		h.hook()
	}
	return n, err
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// emptyStore lets wantNoLeftovers check only the leftovers.
type emptyStore struct{ ports.ObjectStore }

func (emptyStore) List(context.Context, string, func(ports.ObjectInfo) error) error { return nil }
