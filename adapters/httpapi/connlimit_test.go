package httpapi_test

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/test/fakes"
)

// limitedServer serves an answer-everything handler on a loopback port behind
// LimitConnections(limit) and GuardRefusals, as the service does.
func limitedServer(t *testing.T, limit int) (string, *fakes.LogBuffer, *httpapi.Connections) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs fakes.LogBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "ok")
	})}
	conns := httpapi.NewConnections()
	guarded := httpapi.GuardRefusals(srv, httpapi.LimitConnections(ln, limit, log, conns), log, conns)
	go func() { _ = srv.Serve(guarded) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), &logs, conns
}

// keptConn is a client connection that has had one request answered and stays open.
func keptConn(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	r := bufio.NewReader(c)
	ask(t, c, r, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusOK)
	return c, r
}

// ask sends raw on c and checks the status of the answer, which it returns.
func ask(t *testing.T, c net.Conn, r *bufio.Reader, raw string, status int) *http.Response {
	t.Helper()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != status {
		t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, status)
	}
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	return resp
}

// TestConnectionsPastTheCapAreOverloaded: with the cap's connections open, another one is
// answered at once with 503 overloaded (a problem document with Retry-After and X-Request-ID,
// even when its client sent a body first) and closed, the connections already open go on
// being served, and a closed connection makes room for a new one.
func TestConnectionsPastTheCapAreOverloaded(t *testing.T) {
	addr, logs, conns := limitedServer(t, 2)
	c1, r1 := keptConn(t, addr)
	c2, r2 := keptConn(t, addr)
	for _, raw := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n" + strings.Repeat("b", 200000),
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		resp := ask(t, c, bufio.NewReader(c), raw, http.StatusServiceUnavailable)
		_ = c.Close()
		var p httpapi.Problem
		body, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(body, &p); err != nil || p.Code != "overloaded" || resp.Header.Get("Retry-After") == "" ||
			resp.Header.Get("X-Request-ID") == "" || !resp.Close {
			t.Fatalf("refused connection: %v %s (%v); want an overloaded problem with Retry-After, X-Request-ID and Connection: close",
				resp.Header, body, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("the refusal took %s", d)
		}
	}
	// The connections within the cap were not disturbed.
	ask(t, c1, r1, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusOK)
	ask(t, c2, r2, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusOK)
	if !strings.Contains(logs.String(), "connections refused") {
		t.Fatalf("no log line about the refusal:\n%s", logs.String())
	}
	// A request that is not HTTP, on a held connection, is counted apart (and closes it).
	ask(t, c2, r2, "NOT HTTP\r\n\r\n", http.StatusBadRequest)
	if open, refused, unparsed := conns.Stats(); open > 2 || refused != 2 || unparsed != 1 {
		t.Fatalf("counted %d open, %d refused, %d unparsed; want at most 2, 2 and 1", open, refused, unparsed)
	}
	// Closing one makes room: the server notices the close and gives its slot back.
	_ = c1.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		_ = c.Close()
		if err == nil && resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no room after a connection closed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
