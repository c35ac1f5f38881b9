package httpapi_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// postPartly sends a POST /api/v1/posts that declares a body of declared bytes and sends only
// prefix of it, then waits (up to wait) for the answer.
func postPartly(t *testing.T, declared int, prefix string, wait time.Duration) *http.Response {
	t.Helper()
	hs := newHarness(t)
	srv := httptest.NewServer(hs.h)
	t.Cleanup(srv.Close)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(wait))
	_, err = fmt.Fprintf(conn, "POST /api/v1/posts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", userToken, declared, prefix)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer while the client waits with %d of its %d bytes sent: %v", len(prefix), declared, err)
	}
	t.Cleanup(func() { _ = res.Body.Close() })
	return res
}

// TestOversizedBodyOverTheWire checks the 413 on a real connection: the answer arrives while
// the client has sent only the headers and a few bytes of a 64 MiB body.
func TestOversizedBodyOverTheWire(t *testing.T) {
	res := postPartly(t, 64<<20, `{"text":"aaaa`, 5*time.Second)
	if res.StatusCode != http.StatusRequestEntityTooLarge || !res.Close {
		t.Fatalf("status = %d, close = %v; want 413 and a closed connection", res.StatusCode, res.Close)
	}
}

// TestOversizedPostTextOverTheWire: a body within the route's byte limit (which admits 1 MiB of
// text escaped six-fold) whose text passes 1 MiB is answered 413 payload_too_large as soon as
// the text has passed it, while the client has sent only part of its body and waits. Before,
// the kernel waited for the whole body: 408 at the read timeout from a client that stalls,
// and a full read of up to 6 MiB from one that does not.
func TestOversizedPostTextOverTheWire(t *testing.T) {
	res := postPartly(t, 5<<20, `{"text":"`+strings.Repeat("a", 1<<20+1), 10*time.Second)
	var problem struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
	}
	_ = json.NewDecoder(res.Body).Decode(&problem)
	if res.StatusCode != http.StatusRequestEntityTooLarge || !res.Close || problem.Code != "payload_too_large" ||
		!strings.Contains(problem.Detail, "1 MiB") {
		t.Fatalf("status %d, close %v, %+v; want 413 payload_too_large naming 1 MiB on a closed connection", res.StatusCode, res.Close, problem)
	}
}
