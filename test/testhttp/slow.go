// Package testhttp holds helpers for tests that talk HTTP over a real connection.
package testhttp

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// ServeWithWriteTimeout serves h over real HTTP on loopback with writeTimeout as the
// http.Server's write timeout, until the test ends, and returns its address. Each connection
// gets a 32 KiB send buffer, so that a large answer is still being written, not queued in the
// kernel, while a slow client reads it.
func ServeWithWriteTimeout(t testing.TB, h http.Handler, writeTimeout time.Duration) string {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.WriteTimeout = writeTimeout
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if tc, ok := c.(*net.TCPConn); ok && s == http.StateNew {
			_ = tc.SetWriteBuffer(32 << 10)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// ReadSlowly GETs path from the server at addr, with header lines such as
// "Authorization: Bearer x", and reads the answer's body at about rate bytes per second
// through a 32 KiB receive buffer. It returns the status and how many body bytes arrived; an
// error when the body stopped short of its Content-Length.
func ReadSlowly(addr, path string, rate int, header ...string) (status, got int, err error) {
	conn, err := new(net.Dialer).DialContext(context.Background(), "tcp", addr)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(32 << 10)
	}
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	req := "GET " + path + " HTTP/1.1\r\nHost: x\r\n"
	for _, h := range header {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
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
	for next := time.Now(); ; next = next.Add(tick) {
		time.Sleep(time.Until(next))
		n, err := io.ReadFull(res.Body, buf)
		got += n
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF && int64(got) == res.ContentLength:
			return res.StatusCode, got, nil
		case err != nil:
			return res.StatusCode, got, fmt.Errorf("after %d bytes: %w", got, err)
		}
	}
}
