package httpapi_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/test/fakes"
)

// refusalServer serves handler behind GuardRefusals on a loopback port, with the service's
// header limit, and returns its address and the log it writes.
func refusalServer(t *testing.T, handler http.Handler) (string, *fakes.LogBuffer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs fakes.LogBuffer
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: httpapi.MaxHeaderBytes}
	guarded := httpapi.GuardRefusals(srv, ln, slog.New(slog.NewTextHandler(&logs, nil)), nil)
	go func() { _ = srv.Serve(guarded) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), &logs
}

// rawExchange writes raw on a fresh connection and reads the responses until the server
// closes it.
func rawExchange(t *testing.T, addr, raw string) []*http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	var out []*http.Response
	for {
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			if len(out) == 0 {
				t.Fatalf("no response: %v", err)
			}
			return out
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("reading a body: %v", err)
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		out = append(out, resp)
		if resp.Close {
			return out
		}
	}
}

// TestRefusalsAreProblemDocuments: every request net/http refuses before a handler runs is
// answered with its status as a problem document carrying X-Request-ID and the security
// headers, and logged with that id. Before, each was net/http's plain text without
// X-Request-ID.
func TestRefusalsAreProblemDocuments(t *testing.T) {
	addr, logs := refusalServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	for _, c := range []struct {
		name, raw, code, detail string
		status                  int
	}{
		{"a URL over the header limit", "GET /x?q=" + strings.Repeat("a", 100_000) + " HTTP/1.1\r\nHost: x\r\n\r\n",
			"headers_too_large", "64 KiB", 431},
		{"a header over the limit", "GET /x HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 70_000) + "\r\n\r\n",
			"headers_too_large", "64 KiB", 431},
		{"a header line without a colon", "GET /x HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
			"malformed_request", "could not be parsed", 400},
		{"no Host", "GET /x HTTP/1.1\r\n\r\n", "malformed_request", "missing required Host header", 400},
		{"Content-Length twice", "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
			"malformed_request", "not valid HTTP/1.1", 400},
		{"not HTTP at all", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", "malformed_request", "not valid HTTP/1.1", 400},
		{"an unknown transfer coding", "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
			"unsupported_transfer_encoding", "only chunked", 501},
		{"HTTP/2 over HTTP/1 framing", "GET /x HTTP/2.0\r\nHost: x\r\n\r\n", "http_version_not_supported", "HTTP/1.1", 505},
		{"an unknown expectation", "GET /x HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n", "expectation_failed", "100-continue", 417},
	} {
		t.Run(c.name, func(t *testing.T) {
			resps := rawExchange(t, addr, c.raw)
			resp := resps[0]
			body, _ := io.ReadAll(resp.Body)
			id := resp.Header.Get("X-Request-ID")
			if resp.StatusCode != c.status || id == "" || !resp.Close ||
				resp.Header.Get("Content-Type") != "application/problem+json" ||
				resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Fatalf("answer %d, headers %v, body %q; want %d, a problem document with X-Request-ID and nosniff, connection closed",
					resp.StatusCode, resp.Header, body, c.status)
			}
			var p httpapi.Problem
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if p.Status != c.status || p.Code != c.code || p.Type != "/problems/"+c.code || p.Title == "" ||
				!strings.Contains(p.Detail, c.detail) {
				t.Fatalf("problem %+v, want status %d, code %s and a detail that says %q", p, c.status, c.code, c.detail)
			}
			if !strings.Contains(logs.String(), "request_id="+id) {
				t.Fatalf("no log line with request_id=%s:\n%s", id, logs.String())
			}
		})
	}
}

// TestHeadLimitIsTheOneThe431Names: a head (request line, headers and the blank line) of
// exactly httpapi.HeadBytes is served, and one byte more is refused with 431 naming that
// limit. Before, the server was set to MaxHeaderBytes = 64 KiB, which net/http reads 4 KiB
// past, so heads of up to 68 KiB were served while the 431 said 64 KiB.
func TestHeadLimitIsTheOneThe431Names(t *testing.T) {
	addr, _ := refusalServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	head := func(n int) string {
		const start, end = "GET /x HTTP/1.1\r\nHost: x\r\nX-Pad: ", "\r\n\r\n"
		h := start + strings.Repeat("p", n-len(start)-len(end)) + end
		if len(h) != n {
			t.Fatalf("built a head of %d bytes, want %d", len(h), n)
		}
		return h
	}
	if resp := rawExchange(t, addr, head(httpapi.HeadBytes)+"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[0]; resp.StatusCode != http.StatusNoContent {
		t.Fatalf("a head of exactly %d bytes: %d, want 204", httpapi.HeadBytes, resp.StatusCode)
	}
	for _, n := range []int{httpapi.HeadBytes + 1, httpapi.HeadBytes + 2048} {
		resp := rawExchange(t, addr, head(n))[0]
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || !strings.Contains(string(body), "exceed 64 KiB") {
			t.Fatalf("a head of %d bytes: %d %s, want 431 naming 64 KiB", n, resp.StatusCode, body)
		}
	}
}

// TestRefusalsKeepTheClientsRequestID: a refused request whose head carried a sane
// X-Request-ID before the point where net/http gave up is answered and logged with that id,
// whatever the case of the header's name; an id that is not sane, or a head without one, gets
// a fresh one, also on a keep-alive connection whose earlier request carried an id.
func TestRefusalsKeepTheClientsRequestID(t *testing.T) {
	addr, logs := refusalServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	long := strings.Repeat("a", 129)
	for _, c := range []struct {
		name, raw, want string // want "" is a fresh id
		status          int
	}{
		{"an unknown expectation", "GET /x HTTP/1.1\r\nHost: x\r\nX-Request-ID: client-abc-123\r\nExpect: magic\r\n\r\n", "client-abc-123", 417},
		{"no Host, the name in lower case", "GET /x HTTP/1.1\r\nx-request-id:  Abc.1_2 \r\n\r\n", "Abc.1_2", 400},
		{"a header over the limit after the id", "GET /x HTTP/1.1\r\nHost: x\r\nX-REQUEST-ID: big-one\r\nX-Big: " + strings.Repeat("b", 70_000) + "\r\n\r\n", "big-one", 431},
		{"an unknown transfer coding", "POST /x HTTP/1.1\r\nX-Request-Id: te-1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", "te-1", 501},
		{"the first of two", "GET /x HTTP/1.1\r\nX-Request-ID: first\r\nX-Request-ID: second\r\n\r\n", "first", 400},
		{"an id that is not sane", "GET /x HTTP/1.1\r\nX-Request-ID: not sane!\r\n\r\n", "", 400},
		{"an id too long", "GET /x HTTP/1.1\r\nX-Request-ID: " + long + "\r\n\r\n", "", 400},
		{"a longer header name", "GET /x HTTP/1.1\r\nX-Request-ID-Other: other-1\r\n\r\n", "", 400},
		{"after a request with an id on the same connection",
			"GET /x HTTP/1.1\r\nHost: x\r\nX-Request-ID: earlier-1\r\n\r\nGET /x HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n", "", 417},
	} {
		t.Run(c.name, func(t *testing.T) {
			resps := rawExchange(t, addr, c.raw)
			resp := resps[len(resps)-1]
			id := resp.Header.Get("X-Request-ID")
			if resp.StatusCode != c.status || id == "" {
				t.Fatalf("answer %d with X-Request-ID %q, want %d", resp.StatusCode, id, c.status)
			}
			if c.want != "" && id != c.want {
				t.Fatalf("X-Request-ID %q, want the client's %q", id, c.want)
			}
			if c.want == "" && !uuidShape.MatchString(id) {
				t.Fatalf("X-Request-ID %q, want a fresh one", id)
			}
			if !strings.Contains(logs.String(), "request_id="+id) {
				t.Fatalf("no log line with request_id=%s:\n%s", id, logs.String())
			}
		})
	}
}

// TestRequestFramedTwiceClosesTheConnection: a request with both Content-Length and
// Transfer-Encoding (a request smuggling attempt against a proxy that reads the other length)
// is answered, by its chunked body, and then the connection is closed, so the request sent
// after it on the connection is never read (RFC 9112 section 6.3). Before, the connection
// stayed open and the second request was served. A request framed one way keeps its
// connection.
func TestRequestFramedTwiceClosesTheConnection(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	addr, _ := refusalServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.URL.Path+" "+string(body))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	const next = "GET /smuggled HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	for _, c := range []struct {
		name, head string
		answers    int
	}{
		{"both", "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", 1},
		{"both, the other way round and in other cases", "transfer-ENCODING: chunked\r\nCONTENT-length: 4\r\n", 1},
		{"chunked only", "Transfer-Encoding: chunked\r\n", 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			mu.Lock()
			seen = nil
			mu.Unlock()
			resps := rawExchange(t, addr, "POST /first HTTP/1.1\r\nHost: x\r\n"+c.head+"\r\n5\r\nhello\r\n0\r\n\r\n"+next)
			mu.Lock()
			defer mu.Unlock()
			if len(resps) != c.answers || len(seen) != c.answers || seen[0] != "/first hello" {
				t.Fatalf("%d answers, the handler saw %q; want %d, the first with its chunked body", len(resps), seen, c.answers)
			}
			if c.answers == 1 && !resps[0].Close {
				t.Fatal("the answer to a request framed twice does not say Connection: close")
			}
		})
	}
}

var uuidShape = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// refusalLookalike is a response body that starts with exactly what net/http writes for a
// malformed request, longer than net/http's write buffers, so that it reaches the connection
// as a write of its own that begins with a status line.
var refusalLookalike = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request" +
	strings.Repeat("x", 64<<10)

// TestResponseBodiesAreNeverRewritten: a handler's body that begins like one of net/http's
// refusals reaches the client byte for byte, written directly or from a file (the sendfile
// path), and a refusal that follows it on the same keep-alive connection is still rewritten.
func TestResponseBodiesAreNeverRewritten(t *testing.T) {
	file := filepath.Join(t.TempDir(), "lookalike")
	if err := os.WriteFile(file, []byte(refusalLookalike), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, _ := refusalServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/file" {
			http.ServeFile(w, r, file)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(len(refusalLookalike)))
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Error(err)
		}
		_, _ = io.WriteString(w, refusalLookalike)
	}))
	for _, path := range []string{"/direct", "/file"} {
		t.Run(path, func(t *testing.T) {
			resps := rawExchange(t, addr, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\nGET "+path+" HTTP/1.1\r\nHost: x\r\n\r\nNOT HTTP\r\n\r\n")
			if len(resps) != 3 {
				t.Fatalf("%d responses, want 3 (two bodies, then the refusal)", len(resps))
			}
			for i, resp := range resps[:2] {
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusOK || string(body) != refusalLookalike {
					t.Fatalf("response %d: %d with %d bytes starting %q; want 200 with the body unchanged",
						i, resp.StatusCode, len(body), truncated(body))
				}
			}
			last := resps[2]
			if last.StatusCode != http.StatusBadRequest || last.Header.Get("X-Request-ID") == "" ||
				last.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("the refusal after the bodies: %d %v", last.StatusCode, last.Header)
			}
		})
	}
}

func truncated(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}
