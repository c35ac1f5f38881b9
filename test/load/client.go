package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"
)

// loadClient is the HTTP/1.1 client that drives every scenario and every HTTP ceiling: one
// keep-alive connection per request in flight, each request written with one system call and
// its response read on the calling goroutine.
//
// The runner shares the machine with what it measures, so every microsecond its client spends
// is taken from the server or the database. net/http's client costs about twice as much per
// request (its transport hands each exchange between three goroutines, and builds a request,
// a header map and a body reader per call): measured on this machine, 75-118 µs against 39-57
// µs per request at 3,000 requests per second, and 49-56 µs against 23-26 µs at 20,000. Like
// wrk and other load generators, the runner therefore speaks the protocol itself, which the
// scenarios need only a small part of: requests with a Content-Length body, and responses with
// a Content-Length, chunked or read-until-close body. It keeps no cookies, follows no
// redirects and speaks plain HTTP only (the servers it measures are on loopback).
type loadClient struct {
	timeout time.Duration
	maxIdle int

	mu   sync.Mutex
	idle map[string][]*clientConn // by host:port, the most recently used last
}

// clientConn is one keep-alive connection.
type clientConn struct {
	nc       net.Conn
	br       *bufio.Reader
	lastUsed time.Time
}

// maxIdleAge is how long an idle connection is kept for reuse: well within the idle timeout of
// the service and of the ceilings (120 s), so that the runner never writes a request on a
// connection the server is closing.
const maxIdleAge = 60 * time.Second

// aLongTimeAgo is a deadline in the past: setting it makes a blocked read or write return.
var aLongTimeAgo = time.Unix(1, 0)

// newLoadClient returns a client that keeps up to maxIdle idle connections per server.
func newLoadClient(maxIdle int) *loadClient {
	return &loadClient{timeout: 60 * time.Second, maxIdle: maxIdle, idle: map[string][]*clientConn{}}
}

// CloseIdleConnections closes the connections no request is using.
func (c *loadClient) CloseIdleConnections() {
	c.mu.Lock()
	idle := c.idle
	c.idle = map[string][]*clientConn{}
	c.mu.Unlock()
	for _, conns := range idle {
		for _, cc := range conns {
			_ = cc.nc.Close()
		}
	}
}

// get returns an idle connection to host, or dials one.
func (c *loadClient) get(ctx context.Context, host string) (*clientConn, error) {
	now := time.Now()
	c.mu.Lock()
	for conns := c.idle[host]; len(conns) > 0; conns = c.idle[host] {
		cc := conns[len(conns)-1]
		c.idle[host] = conns[:len(conns)-1]
		if now.Sub(cc.lastUsed) < maxIdleAge {
			c.mu.Unlock()
			return cc, nil
		}
		_ = cc.nc.Close()
	}
	c.mu.Unlock()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	return &clientConn{nc: nc, br: bufio.NewReaderSize(nc, 32<<10)}, nil
}

// put keeps cc for the next request to host, or closes it when enough are idle.
func (c *loadClient) put(host string, cc *clientConn) {
	cc.lastUsed = time.Now()
	c.mu.Lock()
	if len(c.idle[host]) < c.maxIdle {
		c.idle[host] = append(c.idle[host], cc)
		cc = nil
	}
	c.mu.Unlock()
	if cc != nil {
		_ = cc.nc.Close()
	}
}

// reply is a finished HTTP exchange; its body is in the worker's buffer and its header lines
// in the worker's header buffer, both valid until the worker's next request.
type reply struct {
	status       int
	header       replyHeader
	method, path string
}

// replyHeader is a response's header lines as received ("Name: value\r\n" each).
type replyHeader []byte

// Get returns the value of the first field called name (in any case), or "".
func (h replyHeader) Get(name string) string {
	rest := []byte(h)
	for len(rest) > 0 {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i+1], rest[i+1:]
		} else {
			rest = nil
		}
		k, v, ok := bytes.Cut(line, []byte{':'})
		if ok && asciiEqualFold(bytes.TrimSpace(k), name) {
			return string(bytes.TrimSpace(v))
		}
	}
	return ""
}

// Clone returns the fields as an http.Header, names in canonical form.
func (h replyHeader) Clone() http.Header {
	block := append(append([]byte(nil), h...), "\r\n"...)
	m, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(block))).ReadMIMEHeader()
	if err != nil {
		return http.Header{}
	}
	return http.Header(m)
}

// field is one extra request header.
type field struct{ name, value string }

// do sends one request to an http:// URL and reads its whole response into w.buf.
func (c *loadClient) do(ctx context.Context, w *worker, method, rawURL string, fields []field, body []byte) (reply, error) {
	rest, ok := strings.CutPrefix(rawURL, "http://")
	if !ok {
		return reply{}, fmt.Errorf("%s %s: the load client speaks plain http:// only", method, rawURL)
	}
	host, target := rest, "/"
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		host, target = rest[:i], rest[i:]
	}
	path, _, _ := strings.Cut(target, "?")
	cc, err := c.get(ctx, host)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := cc.nc.SetDeadline(deadline); err != nil {
		_ = cc.nc.Close()
		return reply{}, err
	}
	stop := func() bool { return true }
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { _ = cc.nc.SetDeadline(aLongTimeAgo) })
	}
	resp, reuse, err := exchange(cc, w, method, host, target, fields, body)
	// A cancellation that already reached the connection leaves it with a deadline in the
	// past: it is not reused.
	if !stop() {
		reuse = false
	}
	if err != nil {
		_ = cc.nc.Close()
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr
		}
		return reply{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if reuse {
		c.put(host, cc)
	} else {
		_ = cc.nc.Close()
	}
	resp.method, resp.path = method, path
	return resp, nil
}

// exchange writes the request on cc and reads the response; reuse says whether the connection
// may carry another request.
func exchange(cc *clientConn, w *worker, method, host, target string, fields []field, body []byte) (reply, bool, error) {
	req := append(w.req[:0], method...)
	req = append(req, ' ')
	req = append(req, target...)
	req = append(req, " HTTP/1.1\r\nHost: "...)
	req = append(req, host...)
	req = append(req, "\r\nUser-Agent: postsvc-load\r\n"...)
	for _, f := range fields {
		req = append(req, f.name...)
		req = append(req, ": "...)
		req = append(req, f.value...)
		req = append(req, "\r\n"...)
	}
	if body != nil || method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		req = append(req, "Content-Length: "...)
		req = strconv.AppendInt(req, int64(len(body)), 10)
		req = append(req, "\r\n"...)
	}
	req = append(req, "\r\n"...)
	var err error
	if len(body) <= 64<<10 {
		req = append(req, body...)
		_, err = cc.nc.Write(req)
	} else {
		bufs := net.Buffers{req, body}
		_, err = bufs.WriteTo(cc.nc)
	}
	w.req = req
	if err != nil {
		return reply{}, false, err
	}

	var (
		status int
		hdr    []byte
		length int64 = -1
		chunk  bool
		closes bool
	)
	for {
		line, err := cc.br.ReadSlice('\n')
		if err != nil {
			return reply{}, false, fmt.Errorf("reading the status line: %w", err)
		}
		if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
			return reply{}, false, fmt.Errorf("malformed status line %q", line)
		}
		if status, err = strconv.Atoi(string(line[9:12])); err != nil {
			return reply{}, false, fmt.Errorf("malformed status line %q", line)
		}
		closes = line[7] == '0' // HTTP/1.0 closes unless it says keep-alive; the servers here speak 1.1
		hdr = w.hdr[:0]
		for {
			line, err := cc.br.ReadSlice('\n')
			if err != nil {
				return reply{}, false, fmt.Errorf("reading the header: %w", err)
			}
			if len(bytes.TrimSpace(line)) == 0 {
				break
			}
			hdr = append(hdr, line...)
			k, v, ok := bytes.Cut(line, []byte{':'})
			if !ok {
				return reply{}, false, fmt.Errorf("malformed header line %q", line)
			}
			k, v = bytes.TrimSpace(k), bytes.TrimSpace(v)
			switch {
			case asciiEqualFold(k, "Content-Length"):
				if length, err = strconv.ParseInt(string(v), 10, 64); err != nil || length < 0 {
					return reply{}, false, fmt.Errorf("malformed Content-Length %q", v)
				}
			case asciiEqualFold(k, "Transfer-Encoding"):
				chunk = asciiEqualFold(v, "chunked")
				if !chunk {
					return reply{}, false, fmt.Errorf("unsupported Transfer-Encoding %q", v)
				}
			case asciiEqualFold(k, "Connection"):
				closes = asciiEqualFold(v, "close")
			}
		}
		w.hdr = hdr
		// An interim answer (100 Continue) is followed by the real one.
		if status >= 200 || status == http.StatusSwitchingProtocols {
			break
		}
	}

	w.buf.Reset()
	switch {
	case method == http.MethodHead || status == http.StatusNoContent || status == http.StatusNotModified:
	case chunk:
		if _, err := w.buf.ReadFrom(httputil.NewChunkedReader(cc.br)); err != nil {
			return reply{}, false, fmt.Errorf("reading the chunked body: %w", err)
		}
		// The trailer, if any, ends with an empty line.
		for {
			line, err := cc.br.ReadSlice('\n')
			if err != nil {
				return reply{}, false, fmt.Errorf("reading the trailer: %w", err)
			}
			if len(bytes.TrimSpace(line)) == 0 {
				break
			}
		}
	case length >= 0:
		w.buf.Grow(int(length))
		if _, err := io.CopyN(&w.buf, cc.br, length); err != nil {
			return reply{}, false, fmt.Errorf("reading the body: %w", err)
		}
	default:
		// No length: the body runs to the end of the connection.
		if _, err := w.buf.ReadFrom(cc.br); err != nil {
			return reply{}, false, fmt.Errorf("reading the body: %w", err)
		}
		closes = true
	}
	return reply{status: status, header: replyHeader(hdr)}, !closes, nil
}

// asciiEqualFold reports whether b is s in any case, without allocating.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
