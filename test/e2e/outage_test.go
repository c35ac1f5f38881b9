package e2e

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"

	"github.com/acme/postsvc/test/testdb"
)

// dbProxy is a TCP relay between the server and MySQL that a test can break in two ways:
// refuse (the listener closes and every relayed connection is reset, as when the database
// host or process is gone) and stall (bytes stop flowing both ways on every connection, old
// and new, as when the network drops packets). Restore brings the database back on the same
// address.
type dbProxy struct {
	t        *testing.T
	upstream string
	addr     string
	stalled  atomic.Bool

	mu       sync.Mutex
	cond     *sync.Cond // signalled when stalled turns false
	listener net.Listener
	conns    []net.Conn
}

func newDBProxy(t *testing.T, upstream string) *dbProxy {
	p := &dbProxy{t: t, upstream: upstream}
	p.cond = sync.NewCond(&p.mu)
	p.listen("127.0.0.1:0")
	t.Cleanup(func() { p.restore(); p.refuse() })
	return p
}

func (p *dbProxy) listen(addr string) {
	var l net.Listener
	var err error
	// The port was ours a moment ago; retry briefly in case the kernel is slow to free it.
	for range 50 {
		if l, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("proxy listen %s: %v", addr, err)
	}
	p.mu.Lock()
	p.listener, p.addr = l, l.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.upstream)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go p.relay(up, c)
			go p.relay(c, up)
		}
	}()
}

// relay copies src to dst, holding each chunk while the proxy is stalled.
func (p *dbProxy) relay(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for p.stalled.Load() {
				p.cond.Wait()
			}
			p.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// refuse closes the listener and resets every relayed connection.
func (p *dbProxy) refuse() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.listener != nil {
		_ = p.listener.Close()
		p.listener = nil
	}
	for _, c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST, not FIN: the peer sees a reset connection
		}
		_ = c.Close()
	}
	p.conns = nil
}

// stall stops every byte from flowing, on connections old and new.
func (p *dbProxy) stall() { p.stalled.Store(true) }

// restore lets bytes flow again and, after refuse, listens again on the same address.
func (p *dbProxy) restore() {
	p.mu.Lock()
	p.stalled.Store(false)
	p.cond.Broadcast()
	closed := p.listener == nil
	addr := p.addr
	p.mu.Unlock()
	if closed {
		p.listen(addr)
	}
}

// mysqlBehindProxy returns a fresh MySQL database's DSN rewritten to go through a proxy.
func mysqlBehindProxy(t *testing.T) (string, *dbProxy) {
	t.Helper()
	cfg, err := mysqldriver.ParseDSN(testdb.MySQLDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Net != "tcp" {
		t.Skipf("the outage test needs MySQL over TCP, not %q", cfg.Net)
	}
	p := newDBProxy(t, cfg.Addr)
	cfg.Addr = p.addr
	return cfg.FormatDSN(), p
}

// timedDo sends a request with a client-side deadline, so a hang fails the test instead of
// blocking it, and reports how long the answer took.
func timedDo(t *testing.T, s *server, method, path, token string) (response, time.Duration) {
	t.Helper()
	req, err := http.NewRequest(method, s.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v (after %s)", method, path, err, time.Since(start))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: body}, time.Since(start)
}

// TestReadinessFollowsTheDatabase starts the server on MySQL through a TCP proxy, takes the
// database away (refused connections, then a stalled network), and checks that /readyz turns
// 503, that API requests answer 503 unavailable with Retry-After within a few seconds instead
// of hanging, that /livez stays 200, that each failure is logged once with its cause, and that
// service resumes by itself once the database is back.
func TestReadinessFollowsTheDatabase(t *testing.T) {
	const requestTimeout = 2 * time.Second
	// The readiness ping has its own 2 s bound; a request its request timeout; allow for
	// scheduling on a busy machine.
	const answerWithin = requestTimeout + 3*time.Second

	modes := []struct {
		name string
		cut  func(*dbProxy)
	}{
		{"refused", (*dbProxy).refuse},
		{"stalled", (*dbProxy).stall},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			dsn, proxy := mysqlBehindProxy(t)
			s := startServer(t, []string{"APP_DATABASE_DRIVER=mysql", "APP_DATABASE_DSN=" + dsn},
				"APP_HTTP_REQUEST_TIMEOUT="+requestTimeout.String())
			a := s.signup(uniqueEmail("outage"))
			id := s.addPost(a.Access, "before the outage")

			mode.cut(proxy)

			r, took := timedDo(t, s, "GET", "/readyz", "")
			expectProblem(t, r, http.StatusServiceUnavailable, "unavailable")
			if r.Header.Get("Retry-After") == "" || took > answerWithin {
				t.Fatalf("/readyz: Retry-After %q after %s", r.Header.Get("Retry-After"), took)
			}
			if r, _ := timedDo(t, s, "GET", "/livez", ""); r.Status != http.StatusOK {
				t.Fatalf("/livez during the outage = %d; it must not check the database", r.Status)
			}
			for _, path := range []string{"/api/v1/posts/" + id, "/api/v1/posts"} {
				r, took := timedDo(t, s, "GET", path, a.Access)
				expectProblem(t, r, http.StatusServiceUnavailable, "unavailable")
				if r.Header.Get("Retry-After") == "" || took > answerWithin {
					t.Fatalf("GET %s: Retry-After %q after %s", path, r.Header.Get("Retry-After"), took)
				}
				// The failure is logged once, at warn, with the cause; the access line is
				// the only other line of the request.
				rid := r.Header.Get("X-Request-ID")
				var lines []string
				deadline := time.Now().Add(5 * time.Second)
				for time.Now().Before(deadline) {
					lines = linesWith(s.stderr.String(), "request_id="+rid)
					if len(lines) >= 2 {
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
				causes := 0
				for _, l := range lines {
					if strings.Contains(l, "error=") {
						causes++
						if !strings.Contains(l, "unavailable") {
							t.Errorf("the error line does not say what happened: %s", l)
						}
					}
				}
				if causes != 1 || len(lines) != 2 {
					t.Errorf("request %s logged %d lines with %d errors, want the access line and one error:\n%s", rid, len(lines), causes, strings.Join(lines, "\n"))
				}
			}

			proxy.restore()
			deadline := time.Now().Add(30 * time.Second)
			for {
				r, _ := timedDo(t, s, "GET", "/readyz", "")
				if r.Status == http.StatusOK {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("/readyz still %d 30 s after the database came back: %s", r.Status, truncate(r.Body))
				}
				time.Sleep(100 * time.Millisecond)
			}
			// Requests succeed again without a restart; the pool may need a try or two to
			// replace connections broken during the outage.
			var got response
			for range 10 {
				if got, _ = timedDo(t, s, "GET", "/api/v1/posts/"+id, a.Access); got.Status == http.StatusOK {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			expect(t, got, http.StatusOK)
			s.addPost(a.Access, "after the outage")
		})
	}
}

// linesWith returns the log lines containing s.
func linesWith(logs, s string) []string {
	var out []string
	for line := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}
