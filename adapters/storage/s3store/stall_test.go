package s3store_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// stallTimeout is the stall bound of these tests; the contexts they pass are far longer.
const stallTimeout = 300 * time.Millisecond

// TestStalledServerFailsTheRequest: a server that stops answering (versitygw under SIGSTOP:
// the kernel still accepts connections and buffers what is sent) fails a Put once nothing has
// moved for the stall timeout, and the request is not tried again. Without the bound a Put
// waited for the transport's 60 s header timeout three times over, and the upload it served
// had no answer at all (an outside probe: 20 uploads of 20 against a stopped versitygw got
// no status, the HTTP server's 60 s write timeout having passed).
func TestStalledServerFailsTheRequest(t *testing.T) {
	t.Run("connections taken, nothing read or answered", func(t *testing.T) {
		var lc net.ListenConfig
		l, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var conns atomic.Int32
		var held []net.Conn
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				conns.Add(1)
				held = append(held, c) // never read, never answered
			}
		}()
		t.Cleanup(func() {
			_ = l.Close()
			<-done
			for _, c := range held {
				_ = c.Close()
			}
		})
		settings, _ := settingsFor("http://"+l.Addr().String(), "")
		settings.StallTimeout = stallTimeout
		store := newStore(t, settings)
		for _, size := range []int{1 << 10, 4 << 20} {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			start := time.Now()
			_, err := store.Put(ctx, "media/u/stalled"+strconv.Itoa(size), bytes.NewReader(randomBytes(size)), int64(size), "image/png")
			took := time.Since(start)
			cancel()
			if err == nil {
				t.Fatalf("a put of %d bytes to a server that never answers succeeded", size)
			}
			if took > 10*stallTimeout {
				t.Fatalf("a put of %d bytes to a stalled server failed after %v, with a stall bound of %v: %v", size, took, stallTimeout, err)
			}
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				t.Fatalf("the put failed by its caller's context, not by the stall bound: %v", err)
			}
		}
		if n := conns.Load(); n != 2 {
			t.Fatalf("%d connections for two puts: a stalled request was tried again", n)
		}
	})

	t.Run("an answer's body stops coming", func(t *testing.T) {
		const size = 1 << 20
		hang := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(size))
			w.Header().Set("ETag", `"e"`)
			w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
			if r.Method == http.MethodHead {
				return
			}
			w.WriteHeader(http.StatusPartialContent)
			_, _ = w.Write(make([]byte, 4096))
			w.(http.Flusher).Flush()
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(func() { close(hang); srv.Close() })
		settings, _ := settingsFor(srv.URL, "")
		settings.StallTimeout = stallTimeout
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		obj, err := newStore(t, settings).Open(ctx, "media/u/i")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = obj.Close() }()
		start := time.Now()
		n, err := io.Copy(io.Discard, obj)
		took := time.Since(start)
		if err == nil {
			t.Fatalf("read %d bytes of a body that stopped coming without an error", n)
		}
		if took > 10*stallTimeout {
			t.Fatalf("the read failed after %v, with a stall bound of %v: %v", took, stallTimeout, err)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("the read failed by its caller's context, not by the stall bound: %v", err)
		}
	})

	t.Run("a caller reading slowly is no stall", func(t *testing.T) {
		const size = 256 << 10
		body := randomBytes(size)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(size))
			w.Header().Set("ETag", `"e"`)
			if r.Method == http.MethodHead {
				return
			}
			w.WriteHeader(http.StatusPartialContent)
			_, _ = w.Write(body)
		}))
		t.Cleanup(srv.Close)
		settings, _ := settingsFor(srv.URL, "")
		settings.StallTimeout = stallTimeout
		obj, err := newStore(t, settings).Open(t.Context(), "media/u/i")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = obj.Close() }()
		got := readInSteps(t, obj, "read slowly", func(int, int) {
			time.Sleep(2 * stallTimeout) // the caller's time, not the server's
		})
		if !bytes.Equal(got, body) {
			t.Fatalf("read %d bytes, not the %d served", len(got), size)
		}
	})
}

// TestReadsOutliveTheOpeningDeadline: an object opened under a deadline (a content request's
// 5 s work bound) can still be read after the deadline has passed: the time a client takes
// to download is not the request's work. The reads used the opening context, so every
// download from S3 still going at the request timeout was cut short (the filesystem store's
// reads never were).
func TestReadsOutliveTheOpeningDeadline(t *testing.T) {
	settings, _ := fake(t, "")
	store := newStore(t, settings)
	body := randomBytes(1 << 20)
	if _, err := store.Put(t.Context(), "media/u/i", bytes.NewReader(body), int64(len(body)), "image/png"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	obj, err := store.Open(ctx, "media/u/i")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = obj.Close() }()
	got := readInSteps(t, obj, "read past the opening deadline", func(total, n int) {
		if total == n {
			<-ctx.Done() // the first read began the download; the rest comes after the deadline
		}
	})
	if !bytes.Equal(got, body) {
		t.Fatalf("read %d bytes, not the %d stored", len(got), len(body))
	}
}

// readInSteps reads r to its end 64 KiB at a time, calling between after each read with the
// bytes read so far and by that read, and fails the test (saying how it read: what) on an
// error.
func readInSteps(t *testing.T, r io.Reader, what string, between func(total, n int)) []byte {
	t.Helper()
	var got bytes.Buffer
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		got.Write(buf[:n])
		if errors.Is(err, io.EOF) {
			return got.Bytes()
		}
		if err != nil {
			t.Fatalf("after %d bytes, %s: %v", got.Len(), what, err)
		}
		between(got.Len(), n)
	}
}
