package httpapi_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/config"
)

// TestLargeAnswersOutlastTheWriteTimeoutForSteadyReaders: a client that reads a 6 MiB answer
// steadily at about 3 MiB/s, far above httpapi.MinSendRate, gets all of it although that takes
// ten times the server's write timeout, whether the answer is streamed (StartJSONStream, as an
// ECG or a post list is) or written whole (WriteEncodedJSON, a cached list). Before, the write
// timeout bounded every answer: the body stopped short of its Content-Length.
func TestLargeAnswersOutlastTheWriteTimeoutForSteadyReaders(t *testing.T) {
	const size = 6 << 20
	const writeTimeout = 200 * time.Millisecond
	doc := append(append([]byte(`"`), bytes.Repeat([]byte("a"), size-3)...), '"', '\n')
	e, err := httpapi.NewRouter(httpapi.RouterDeps{
		Modules: []httpapi.Module{testModule{routes: []httpapi.Route{
			{Method: http.MethodGet, Path: "/streamed", Handler: func(c *gin.Context) {
				js := httpapi.StartJSONStream(c, http.StatusOK, size)
				defer js.Finish()
				for i := 0; i < size; i += 64 << 10 {
					js.Raw(string(doc[i:min(i+64<<10, size)]))
				}
			}},
			{Method: http.MethodGet, Path: "/encoded", Handler: func(c *gin.Context) {
				httpapi.WriteEncodedJSON(c, http.StatusOK, doc)
			}},
		}}},
		HTTP: config.HTTP{RequestTimeout: 5 * time.Second, WriteTimeout: writeTimeout},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(e)
	srv.Config.WriteTimeout = writeTimeout
	// Small socket buffers on both sides, so that the answer is still being written, not
	// queued in the kernel, while the client reads it.
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if tc, ok := c.(*net.TCPConn); ok && s == http.StateNew {
			_ = tc.SetWriteBuffer(32 << 10)
		}
	}
	srv.Start()
	defer srv.Close()

	var wg sync.WaitGroup
	for _, path := range []string{"/streamed", "/encoded"} {
		wg.Go(func() {
			got, status, err := readSlowly(srv.Listener.Addr().String(), "/api/v1"+path, 3<<20)
			if err != nil || status != http.StatusOK || got != size {
				t.Errorf("GET %s read at 3 MiB/s: status %d, %d of %d bytes, %v", path, status, got, size, err)
			}
		})
	}
	wg.Wait()
}

// readSlowly GETs path and reads the answer's body at about rate bytes per second, through a
// small receive buffer. It returns the status and how many body bytes arrived.
func readSlowly(addr, path string, rate int) (int, int, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(32 << 10)
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path); err != nil {
		return 0, 0, err
	}
	res, err := http.ReadResponse(bufio.NewReaderSize(conn, 4<<10), nil)
	if err != nil {
		return 0, 0, err
	}
	defer res.Body.Close()
	const chunk = 16 << 10
	tick := time.Second * chunk / time.Duration(rate)
	buf := make([]byte, chunk)
	got := 0
	for next := time.Now(); ; next = next.Add(tick) {
		time.Sleep(time.Until(next))
		n, err := io.ReadFull(res.Body, buf)
		got += n
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF && int64(got) == res.ContentLength:
			return got, res.StatusCode, nil
		case err != nil:
			return got, res.StatusCode, fmt.Errorf("after %d bytes: %w", got, err)
		}
	}
}
