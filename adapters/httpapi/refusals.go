package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Answers net/http writes on its own.
//
// net/http refuses some requests before any handler sees them: a request line and headers
// over MaxHeaderBytes (431), a request line or header it cannot parse, a missing or malformed
// Host header, a repeated Content-Length (400), an HTTP version it does not serve (505), a
// transfer coding it does not know (501) and an Expect other than 100-continue (417). It
// writes those answers straight to the connection as plain text without X-Request-ID, which
// breaks two promises of the contract: every response carries X-Request-ID, and every error is
// a problem document. net/http has no hook for them, so the connection rewrites them: while no
// handler's response is being written on it, a write that is one of those answers (a status
// line, then headers without X-Request-ID) is replaced by the same status as a problem
// document with the headers every response carries and a request id: the client's, when the
// head it sent has a sane X-Request-ID before the point where net/http gave up (headScan
// watches the bytes read while no handler runs), a fresh one otherwise. A response body
// can never be mistaken for one: body bytes are written only while a handler's response is
// under way, from the moment its handler starts until net/http marks the connection idle again
// after the last byte.

// HeadBytes is the longest request head the service reads: the request line, the headers and
// the blank line after them, in bytes. A longer one is answered 431 headers_too_large, whose
// detail names this limit.
const HeadBytes = 64 << 10

// headSlack is what net/http reads past http.Server.MaxHeaderBytes before it gives up on a
// head (its initialReadLimitSize): a head is refused only once it is longer than
// MaxHeaderBytes + headSlack bytes.
const headSlack = 4096

// MaxHeaderBytes is the http.Server setting that makes net/http refuse a head longer than
// HeadBytes, no sooner and no later. Setting it to HeadBytes itself would let heads of up to
// HeadBytes + 4 KiB through, which the 431 would then misstate.
const MaxHeaderBytes = HeadBytes - headSlack

// GuardRefusals makes the answers net/http writes on its own (see above) problem documents
// with X-Request-ID. It installs its hooks on srv (the handler, ConnContext and ConnState,
// keeping any already set) and returns ln wrapped: srv must serve the returned listener.
// Every refusal is logged on log at Info, with its request id, and counted in counts when it
// is not nil.
func GuardRefusals(srv *http.Server, ln net.Listener, log *slog.Logger, counts *Connections) net.Listener {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	next := srv.Handler
	if next == nil {
		next = http.DefaultServeMux
	}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := r.Context().Value(guardedConnKey{}).(*guardedConn); ok {
			c.responding.Store(true)
			if c.framedTwice() {
				// RFC 9112 section 6.3: a request with both Transfer-Encoding and
				// Content-Length may be an attempt to smuggle a request past a proxy that
				// read the other length; net/http reads it by Transfer-Encoding and drops
				// Content-Length, and the server must close the connection after answering,
				// so that nothing sent after it on the connection is read as a request.
				w.Header().Set("Connection", "close")
			}
		}
		next.ServeHTTP(w, r)
	})
	connContext := srv.ConnContext
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if connContext != nil {
			ctx = connContext(ctx, c)
		}
		if gc, ok := c.(*guardedConn); ok {
			ctx = context.WithValue(ctx, guardedConnKey{}, gc)
		}
		return ctx
	}
	connState := srv.ConnState
	srv.ConnState = func(c net.Conn, state http.ConnState) {
		// Idle comes after the last byte of a response has been written, and before the
		// next request is read.
		if gc, ok := c.(*guardedConn); ok && state == http.StateIdle {
			gc.responding.Store(false)
			gc.newHead()
		}
		if connState != nil {
			connState(c, state)
		}
	}
	limit := srv.MaxHeaderBytes
	if limit <= 0 {
		limit = http.DefaultMaxHeaderBytes
	}
	limit += headSlack
	if counts == nil {
		counts = &Connections{}
	}
	return &guardedListener{Listener: ln, log: log, headerLimit: limit, counts: counts}
}

type guardedConnKey struct{}

// guardedListener hands out guardedConns.
type guardedListener struct {
	net.Listener
	log *slog.Logger
	// headerLimit is how long a head the server reads (its MaxHeaderBytes plus headSlack),
	// which a 431 names.
	headerLimit int
	counts      *Connections
}

func (l *guardedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &guardedConn{wrappedConn: wrappedConn{c}, log: l.log, headerLimit: l.headerLimit, counts: l.counts}, nil
}

// guardedConn rewrites net/http's own refusals written on it while no handler's response is.
type guardedConn struct {
	wrappedConn
	log         *slog.Logger
	headerLimit int
	counts      *Connections
	// responding is true from the start of a handler until net/http marks the connection
	// idle after its response.
	responding atomic.Bool
	// scan reads the head being read (its X-Request-ID, how its body is framed). scanMu
	// guards it: the reads and a refusal are on net/http's connection goroutine, but Idle
	// resets it from ConnState.
	scanMu sync.Mutex
	scan   headScan
}

func (c *guardedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.responding.Load() {
		c.scanMu.Lock()
		c.scan.feed(p[:n])
		c.scanMu.Unlock()
	}
	return n, err
}

// newHead starts the scan of a new request's head.
func (c *guardedConn) newHead() {
	c.scanMu.Lock()
	c.scan = headScan{}
	c.scanMu.Unlock()
}

// framedTwice reports whether the head just read had both a Content-Length and a
// Transfer-Encoding line.
func (c *guardedConn) framedTwice() bool {
	c.scanMu.Lock()
	defer c.scanMu.Unlock()
	return c.scan.contentLength && c.scan.transferEncoding
}

// clientRequestID is the sane X-Request-ID of the head being read, or "".
func (c *guardedConn) clientRequestID() string {
	c.scanMu.Lock()
	defer c.scanMu.Unlock()
	if id := strings.TrimSpace(string(c.scan.value)); c.scan.idDone && saneRequestID(id) {
		return id
	}
	return ""
}

func (c *guardedConn) Write(p []byte) (int, error) {
	if c.responding.Load() {
		return c.Conn.Write(p)
	}
	r, ok := parseRefusal(p, c.headerLimit)
	if !ok {
		return c.Conn.Write(p)
	}
	id := c.clientRequestID()
	if id == "" {
		id = uuid.NewString()
	}
	c.counts.unparsed.Add(1)
	// Logged first, so the line is there by the time the client has the answer.
	c.log.Info("http request refused before routing",
		slog.Int("status", r.status), slog.String("code", r.code), slog.String("detail", r.detail),
		slog.String("request_id", id))
	if _, err := c.Conn.Write(r.answer(id, time.Now())); err != nil {
		return 0, err
	}
	return len(p), nil
}

// headScan reads a request head fed to it in pieces as they are read, for what the
// connection needs to know of it: the value of its first X-Request-ID line (at most the
// longest sane id and one byte more, so that a longer value is not taken for a sane one cut
// short), and whether it has both a Content-Length and a Transfer-Encoding line. It reads each
// line's name byte by byte up to its colon, giving up on names longer than any it looks for,
// and skips the rest of the line with one IndexByte.
type headScan struct {
	// started is set by the first byte fed; ended by the blank line that ends the head, after
	// which nothing is read (a body's lines are not headers).
	started, ended bool
	// inName is set while a line's name is read; name holds its first bytes, lower-cased,
	// and nameLen counts them all.
	inName  bool
	name    [len("transfer-encoding")]byte
	nameLen int
	// capturing is set while X-Request-ID's value is read, until its line ends.
	capturing, idDone bool
	value             []byte
	// contentLength and transferEncoding tell which of those header lines the head had.
	contentLength, transferEncoding bool
}

func (s *headScan) feed(p []byte) {
	if !s.started {
		s.started, s.inName = true, true // a head starts at the start of a line
	}
	for len(p) > 0 && !s.ended {
		switch {
		case s.capturing:
			end := bytes.IndexAny(p, "\r\n")
			piece := p
			if end >= 0 {
				piece = p[:end]
			}
			if len(s.value) == 0 {
				piece = bytes.TrimLeft(piece, " \t") // the whitespace before a value
			}
			if room := maxRequestIDLength + 1 - len(s.value); room > 0 {
				s.value = append(s.value, piece[:min(len(piece), room)]...)
			}
			if end < 0 {
				return
			}
			s.capturing, s.idDone = false, true
			p = p[end:] // the line's end, which the next case skips to
		case s.inName:
			b := p[0]
			p = p[1:]
			switch {
			case b == '\n':
				// A line that was empty (or held only its CR) ends the head; the request
				// line, which has no colon, ends here too.
				s.ended = s.nameLen == 0 || s.nameLen == 1 && s.name[0] == '\r'
				s.nameLen = 0
			case b == ':':
				s.inName = false
				s.named()
			case s.nameLen >= len(s.name):
				s.inName = false // longer than any name looked for: skip the line
			default:
				if b >= 'A' && b <= 'Z' {
					b += 'a' - 'A'
				}
				s.name[s.nameLen] = b
				s.nameLen++
			}
		default:
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				return
			}
			p = p[i+1:]
			s.inName, s.nameLen = true, 0
		}
	}
}

// named acts on the name of a header line whose colon has just been read.
func (s *headScan) named() {
	switch string(s.name[:s.nameLen]) {
	case "x-request-id":
		s.capturing = !s.idDone
	case "content-length":
		s.contentLength = true
	case "transfer-encoding":
		s.transferEncoding = true
	}
}

// wrappedConn is a net.Conn wrapped by this package: it passes on the optional methods net/http
// looks for on the connection it serves (ReadFrom for sendfile, CloseWrite for the half-close
// after a 431), which embedding the net.Conn interface alone would hide.
type wrappedConn struct{ net.Conn }

func (c wrappedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{c.Conn}, r)
}

func (c wrappedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// writerOnly hides a writer's ReadFrom, so io.Copy does not call it back.
type writerOnly struct{ io.Writer }

// refusal is an answer written on a connection outside any handler: one of net/http's own,
// read back from its bytes, or a connection refused past the cap (connlimit.go).
type refusal struct {
	status       int
	code, detail string
	// retryAfter, when set, is the Retry-After header's value.
	retryAfter string
}

// refusalHeaderLimit bounds the header block of an answer parseRefusal reads: net/http's own
// are under 150 bytes.
const refusalHeaderLimit = 512

// parseRefusal recognises one of net/http's own answers: the whole of p is one response (a
// status line and headers without X-Request-ID, so not one of the router's). net/http writes
// each of them with a single Write.
func parseRefusal(p []byte, headerLimit int) (refusal, bool) {
	const prefix = "HTTP/1.1 "
	if !bytes.HasPrefix(p, []byte(prefix)) {
		return refusal{}, false
	}
	end := bytes.Index(p, []byte("\r\n\r\n"))
	if end < 0 || end > refusalHeaderLimit {
		return refusal{}, false
	}
	head := p[:end]
	if bytes.Contains(bytes.ToLower(head), []byte("\r\nx-request-id:")) {
		return refusal{}, false
	}
	line, _, _ := bytes.Cut(head, []byte("\r\n"))
	rest := line[len(prefix):]
	if len(rest) < 3 {
		return refusal{}, false
	}
	status, err := strconv.Atoi(string(rest[:3]))
	if err != nil || status < 400 || status > 599 {
		return refusal{}, false
	}
	// A parse error with a reason is "400 Bad Request: missing required Host header".
	var reason string
	if _, after, found := bytes.Cut(rest, []byte(": ")); found {
		reason = string(after)
	}
	return describeRefusal(status, reason, headerLimit), true
}

// describeRefusal is the problem code and detail of a refusal with status and net/http's
// reason ("" when it gave none); headerLimit is the longest head the server reads.
func describeRefusal(status int, reason string, headerLimit int) refusal {
	switch status {
	case http.StatusRequestHeaderFieldsTooLarge:
		limit := strconv.Itoa(headerLimit) + " bytes"
		if headerLimit%1024 == 0 {
			limit = strconv.Itoa(headerLimit/1024) + " KiB"
		}
		return refusal{status: status, code: CodeHeadersTooLarge, detail: "The request line and headers together exceed " + limit + "."}
	case http.StatusNotImplemented:
		return refusal{status: status, code: CodeUnsupportedTransferEncoding, detail: "The request's Transfer-Encoding is not supported: only chunked is."}
	case http.StatusHTTPVersionNotSupported:
		return refusal{status: status, code: CodeHTTPVersionNotSupported, detail: "The request's HTTP version is not supported: send HTTP/1.1."}
	case http.StatusExpectationFailed:
		return refusal{status: status, code: CodeExpectationFailed, detail: "The request's Expect header asks for something other than 100-continue."}
	}
	detail := "The request is not valid HTTP/1.1: its request line or a header could not be parsed."
	if reason != "" {
		detail = "The request is not valid HTTP/1.1: " + reason + "."
	}
	return refusal{status: http.StatusBadRequest, code: CodeMalformedRequest, detail: detail}
}

// answer is the refusal as a complete response: a problem document with the headers every
// response carries, and Connection: close, as net/http closes the connection after it.
func (r refusal) answer(requestID string, now time.Time) []byte {
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(newProblem(r.status, r.code, r.detail)) // strings and an int: cannot fail
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 " + strconv.Itoa(r.status) + " " + http.StatusText(r.status) + "\r\n")
	h := http.Header{}
	h.Set("Content-Type", problemContentType)
	h.Set("Content-Length", strconv.Itoa(body.Len()))
	h.Set(HeaderRequestID, requestID)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", APIContentSecurityPolicy)
	if r.retryAfter != "" {
		h.Set("Retry-After", r.retryAfter)
	}
	h.Set("Connection", "close")
	h.Set("Date", now.UTC().Format(http.TimeFormat))
	_ = h.Write(&b) // into a bytes.Buffer: cannot fail
	b.WriteString("\r\n")
	b.Write(body.Bytes())
	return b.Bytes()
}
