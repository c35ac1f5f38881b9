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

// TestOversizedBodyOverTheWire checks the 413 on a real connection: the answer arrives while
// the client has sent only the headers and a few bytes of a 64 MiB body.
func TestOversizedBodyOverTheWire(t *testing.T) {
	hs := newHarness(t)
	srv := httptest.NewServer(hs.h)
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = fmt.Fprintf(conn, "POST /api/v1/posts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"text\":\"aaaa", userToken, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response before the body was sent: %v", err)
	}
	defer res.Body.Close()
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
	hs := newHarness(t)
	srv := httptest.NewServer(hs.h)
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	text := strings.Repeat("a", 1<<20+1)
	_, err = fmt.Fprintf(conn, "POST /api/v1/posts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"text\":\"%s", userToken, 5<<20, text)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response while the client waits with its text over 1 MiB: %v", err)
	}
	defer res.Body.Close()
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
