package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// newCountingServer serves h and counts the connections clients opened to it.
func newCountingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func TestLoadClientExchanges(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 10<<10) // 160 KiB: written with writev
	srv, conns := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.Header().Set("X-Method", r.Method)
			w.Header().Set("X-Auth", r.Header.Get("Authorization"))
			w.Header().Set("X-Type", r.Header.Get("Content-Type"))
			w.Header().Set("X-Query", r.URL.RawQuery)
			w.Header().Set("X-Cache", "MISS")
			_, _ = w.Write(body)
		case "/chunked":
			for i := range 3 {
				_, _ = io.WriteString(w, strings.Repeat(string(rune('a'+i)), 5000))
				w.(http.Flusher).Flush()
			}
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/close":
			w.Header().Set("Connection", "close")
			_, _ = io.WriteString(w, "bye")
		}
	})
	c := newLoadClient(4)
	defer c.CloseIdleConnections()
	w := &worker{}
	ctx := context.Background()

	resp, err := call(ctx, c, w, http.MethodGet, srv.URL+"/echo?cursor=abc", "tok", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.status != 200 || resp.header.Get("x-cache") != "MISS" || resp.header.Get("X-Auth") != "Bearer tok" ||
		resp.header.Get("X-Query") != "cursor=abc" || resp.header.Get("X-Method") != "GET" || w.buf.Len() != 0 || resp.path != "/echo" {
		t.Fatalf("GET: status %d, header %q, body %q, path %q", resp.status, resp.header, w.buf.String(), resp.path)
	}
	if got := resp.header.Clone().Get("X-Type"); got != "" {
		t.Errorf("GET sent Content-Type %q", got)
	}
	for _, body := range [][]byte{[]byte(`{"text":"hi"}`), big} {
		resp, err = call(ctx, c, w, http.MethodPost, srv.URL+"/echo", "", body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.status != 200 || !bytes.Equal(w.buf.Bytes(), body) || resp.header.Get("X-Type") != "application/json" || resp.header.Get("X-Auth") != "" {
			t.Fatalf("POST of %d bytes: status %d, %d bytes back, header %q", len(body), resp.status, w.buf.Len(), resp.header)
		}
	}
	resp, err = call(ctx, c, w, http.MethodGet, srv.URL+"/chunked", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Repeat("a", 5000) + strings.Repeat("b", 5000) + strings.Repeat("c", 5000); w.buf.String() != want || resp.header.Get("Transfer-Encoding") != "chunked" {
		t.Fatalf("chunked: %d bytes, header %q", w.buf.Len(), resp.header)
	}
	resp, err = call(ctx, c, w, http.MethodDelete, srv.URL+"/empty", "tok", nil)
	if err != nil || resp.status != http.StatusNoContent || w.buf.Len() != 0 {
		t.Fatalf("204: %v, status %d, body %q", err, resp.status, w.buf.String())
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for five keep-alive exchanges one after another, want 1", n)
	}
	if resp.header.Clone().Get("Date") == "" {
		t.Errorf("Clone lost the Date field: %q", resp.header)
	}

	// A server that closes: the connection is not reused, and the next request dials again.
	for range 2 {
		resp, err = call(ctx, c, w, http.MethodGet, srv.URL+"/close", "", nil)
		if err != nil || resp.status != 200 || w.buf.String() != "bye" {
			t.Fatalf("close: %v, status %d, body %q", err, resp.status, w.buf.String())
		}
	}
	if _, err = call(ctx, c, w, http.MethodGet, srv.URL+"/empty", "", nil); err != nil {
		t.Fatal(err)
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d connections after two answers with Connection: close, want 3", n)
	}
}

// A response without a length runs to the end of the connection.
func TestLoadClientReadsUntilClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		buf := make([]byte, 4096)
		_, _ = conn.Read(buf)
		_, _ = io.WriteString(conn, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nall of it")
	}()
	c := newLoadClient(4)
	w := &worker{}
	resp, err := call(context.Background(), c, w, http.MethodGet, "http://"+ln.Addr().String()+"/", "", nil)
	if err != nil || resp.status != 200 || w.buf.String() != "all of it" || resp.header.Get("X-A") != "1" {
		t.Fatalf("%v, status %d, body %q, header %q", err, resp.status, w.buf.String(), resp.header)
	}
	if len(c.idle[ln.Addr().String()]) != 0 {
		t.Fatal("kept a connection whose body ran to its end")
	}
}

// Cancelling the context ends a request the server never answers, at once.
func TestLoadClientCancel(t *testing.T) {
	release := make(chan struct{})
	srv, _ := newCountingServer(t, func(http.ResponseWriter, *http.Request) { <-release })
	defer close(release)
	c := newLoadClient(4)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := call(ctx, c, &worker{}, http.MethodGet, srv.URL+"/", "", nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("returned %s after the cancel", took)
	}
	if _, err := call(context.Background(), c, &worker{}, http.MethodGet, "https://example.invalid/", "", nil); err == nil {
		t.Fatal("accepted an https URL")
	}
}
