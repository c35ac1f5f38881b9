package httpapi

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// LimitConnections caps the connections ln hands out at limit (APP_HTTP_MAX_CONNECTIONS).
//
// Every open connection costs the server memory, about 20 KiB between its goroutine and its
// buffers, and a request whose body arrives slowly holds its connection for up to the read
// timeout: without a cap, a client that opens connections faster than they time out (slow
// bodies, or headers that never end within ReadHeaderTimeout) grows the process without bound.
// A connection past the cap is answered at once with 503 overloaded (a problem document with
// Retry-After and X-Request-ID) and closed, without its request being read, so the clients
// already connected keep being served and a new client is told to come back rather than
// left waiting in the kernel's accept queue. Refusals are logged at most every 10 s, with how
// many there were.
// counts, when not nil, counts the open and the refused connections for /metrics.
func LimitConnections(ln net.Listener, limit int, log *slog.Logger, counts *Connections) net.Listener {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if counts == nil {
		counts = &Connections{}
	}
	return &limitedListener{
		Listener: ln, limit: limit, log: log, counts: counts,
		slots:    make(chan struct{}, limit),
		refusing: make(chan struct{}, maxConcurrentRefusals),
	}
}

// maxConcurrentRefusals bounds the refused connections being answered at once; past it, a
// refused connection is closed without an answer.
const maxConcurrentRefusals = 256

// refusalLinger bounds how long a refused connection is kept to deliver its answer.
const refusalLinger = time.Second

// refusalLogEvery spaces the log lines about refused connections.
const refusalLogEvery = 10 * time.Second

// Connections counts, for /metrics, the connections of the listeners it is handed to: those
// open now, those refused past the cap and the requests net/http refused before routing
// (GuardRefusals), since start. The zero value is ready; one Connections may serve several
// listeners, and then counts them together.
type Connections struct {
	open, refused, unparsed atomic.Int64
}

// NewConnections returns zeroed counters, for wire.
func NewConnections() *Connections { return &Connections{} }

// Stats returns the connections open now, the connections refused past the cap and the
// requests refused before routing since start.
func (c *Connections) Stats() (open, refused, unparsed int64) {
	return c.open.Load(), c.refused.Load(), c.unparsed.Load()
}

type limitedListener struct {
	net.Listener
	limit    int
	log      *slog.Logger
	counts   *Connections
	slots    chan struct{}
	refusing chan struct{}
	// refused counts the refusals since the last log line, at lastLog (Unix nanoseconds).
	refused atomic.Int64
	lastLog atomic.Int64
}

func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			l.counts.open.Add(1)
			return &limitedConn{wrappedConn: wrappedConn{c}, release: func() { l.counts.open.Add(-1); <-l.slots }}, nil
		default:
			l.refuse(c)
		}
	}
}

// refuse answers c with 503 overloaded and closes it, in the background.
func (l *limitedListener) refuse(c net.Conn) {
	l.counts.refused.Add(1)
	l.logRefusal()
	select {
	case l.refusing <- struct{}{}:
	default:
		_ = c.Close()
		return
	}
	go func() {
		defer func() { <-l.refusing }()
		_ = c.SetDeadline(time.Now().Add(refusalLinger))
		r := refusal{status: http.StatusServiceUnavailable, code: CodeOverloaded, retryAfter: overloadedRetryAfter,
			detail: "The server is holding as many connections as it serves at once; retry after the time in Retry-After."}
		if _, err := c.Write(r.answer(uuid.NewString(), time.Now())); err == nil {
			// Half-close, then read what the client sends until it closes (or the linger
			// ends), so that closing with its request unread does not reset the answer away.
			if cw, ok := c.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(c, 1<<20))
		}
		_ = c.Close()
	}()
}

// logRefusal logs the first refusal and then at most one line every refusalLogEvery, with
// the number of connections refused since the last one.
func (l *limitedListener) logRefusal() {
	l.refused.Add(1)
	now := time.Now().UnixNano()
	last := l.lastLog.Load()
	if now-last < int64(refusalLogEvery) || !l.lastLog.CompareAndSwap(last, now) {
		return
	}
	n := l.refused.Swap(0)
	l.log.Warn("connections refused: the server holds as many as it may (APP_HTTP_MAX_CONNECTIONS)",
		slog.Int("limit", l.limit), slog.Int64("refused", n), slog.String("addr", l.Addr().String()))
}

// limitedConn gives its slot back once, when it is closed.
type limitedConn struct {
	wrappedConn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
