package testdb

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"
)

// Proxy is a TCP relay between a client under test and MySQL that a test can break in two
// ways: Refuse (the listener closes and every relayed connection is reset, as when the
// database host or process is gone) and Stall (bytes stop flowing both ways on every
// connection, old and new, as when the network drops packets). Restore brings the database
// back on the same address.
type Proxy struct {
	t        testing.TB
	upstream string
	addr     string
	stalled  atomic.Bool
	delay    atomic.Int64 // nanoseconds each chunk is held before it is relayed

	mu       sync.Mutex
	cond     *sync.Cond // signalled when stalled turns false
	listener net.Listener
	conns    []net.Conn
}

// NewProxy starts a relay to upstream (host:port) on a free loopback port. It is closed when
// the test ends.
func NewProxy(t testing.TB, upstream string) *Proxy {
	p := &Proxy{t: t, upstream: upstream}
	p.cond = sync.NewCond(&p.mu)
	p.listen("127.0.0.1:0")
	t.Cleanup(func() { p.Restore(); p.Refuse() })
	return p
}

// MySQLBehindProxy returns a fresh MySQL database's DSN rewritten to go through a Proxy.
func MySQLBehindProxy(t testing.TB) (string, *Proxy) {
	t.Helper()
	cfg, err := mysqldriver.ParseDSN(MySQLDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Net != "tcp" {
		t.Skipf("an outage test needs MySQL over TCP, not %q", cfg.Net)
	}
	p := NewProxy(t, cfg.Addr)
	cfg.Addr = p.Addr()
	return cfg.FormatDSN(), p
}

// Addr is the relay's host:port.
func (p *Proxy) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

func (p *Proxy) listen(addr string) {
	var l net.Listener
	var err error
	// The port was ours a moment ago; retry briefly in case the kernel is slow to free it.
	for range 50 {
		if l, err = new(net.ListenConfig).Listen(context.Background(), "tcp", addr); err == nil {
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
			up, err := new(net.Dialer).DialContext(context.Background(), "tcp", p.upstream)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			if p.listener != l {
				// Refuse ran while this connection was being set up: it must not survive it.
				p.mu.Unlock()
				_ = c.Close()
				_ = up.Close()
				continue
			}
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go p.relay(up, c)
			go p.relay(c, up)
		}
	}()
}

// relay copies src to dst, holding each chunk while the proxy is stalled.
func (p *Proxy) relay(dst, src net.Conn) {
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
			if d := time.Duration(p.delay.Load()); d > 0 {
				time.Sleep(d)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Refuse closes the listener and resets every relayed connection: new connections are
// refused and pooled ones are broken.
func (p *Proxy) Refuse() {
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

// Delay holds every chunk for d before relaying it, in order, as a slow network does.
func (p *Proxy) Delay(d time.Duration) { p.delay.Store(int64(d)) }

// Stall stops every byte from flowing, on connections old and new.
func (p *Proxy) Stall() { p.stalled.Store(true) }

// Restore lets bytes flow again and, after Refuse, listens again on the same address.
func (p *Proxy) Restore() {
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

// Cut is one way a test breaks the link through a Proxy.
type Cut struct {
	Name  string
	Apply func(*Proxy)
}

// Cuts are the outages the outage tests try: connections refused, and connections that
// stay open but carry nothing.
func Cuts() []Cut {
	return []Cut{{"refused", (*Proxy).Refuse}, {"stalled", (*Proxy).Stall}}
}
