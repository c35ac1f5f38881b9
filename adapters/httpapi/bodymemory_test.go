package httpapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/acme/postsvc/adapters/httpapi"
)

// TestBodyMemoryIsBounded holds the whole body budget with an upload whose body has
// arrived up to it and is still arriving: another upload then waits for memory, and is shed
// as overloaded when its deadline passes first. Once the first body is in and decoded,
// uploads go through again.
func TestBodyMemoryIsBounded(t *testing.T) {
	hs := newHarness(t, func(d *httpapi.RouterDeps) {
		d.HTTP.BodyMemory = 64 << 10
		d.HTTP.RequestTimeout = 300 * time.Millisecond
	})
	body := `{"text":"` + strings.Repeat("a", 40<<10) + `"}`
	pr, pw := io.Pipe()
	slow := httptest.NewRequest(http.MethodPost, "/api/v1/posts", pr)
	slow.ContentLength = int64(len(body)) // twice this is more than the whole budget
	slow.Header.Set("Content-Type", "application/json")
	slow.Header.Set("Authorization", "Bearer "+userToken)
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() { done <- hs.serve(slow) }()
	sent := 30 << 10                                           // reserved for at 2.5 times: more than the budget
	if _, err := io.WriteString(pw, body[:sent]); err != nil { // returns once the handler has read it
		t.Fatal(err)
	}

	start := time.Now()
	rec := hs.do(request{Method: "POST", Path: "/api/v1/posts", Token: userToken, Body: `{"text":"small"}`})
	assertProblem(t, rec, http.StatusServiceUnavailable, "overloaded")
	if rec.Header().Get("Retry-After") == "" || time.Since(start) > 2*time.Second {
		t.Fatalf("shed after %s with Retry-After %q", time.Since(start), rec.Header().Get("Retry-After"))
	}

	if _, err := io.WriteString(pw, body[sent:]); err != nil {
		t.Fatal(err)
	}
	_ = pw.Close()
	if rec := <-done; rec.Code != http.StatusCreated {
		t.Fatalf("the slow upload = %d %s", rec.Code, rec.Body.String())
	}
	if rec := hs.do(request{Method: "POST", Path: "/api/v1/posts", Token: userToken, Body: `{"text":"small"}`}); rec.Code != http.StatusCreated {
		t.Fatalf("after the budget was given back: %d %s", rec.Code, rec.Body.String())
	}
}

// TestAnnouncedBodiesHoldNoBudget: bodies that are announced (a large Content-Length, or
// chunked at the endpoint's limit) but not sent hold only the first small chunk each, so
// other requests are not kept waiting for memory by bytes that never arrive. Before, each
// reserved 2.5 times its announced length up front: four stalled chunked posts held a 64 MiB
// budget for the whole read timeout, and every JSON request waited behind them (outside
// probe: logins took 4.8 s, or got 503).
func TestAnnouncedBodiesHoldNoBudget(t *testing.T) {
	hs := newHarness(t, func(d *httpapi.RouterDeps) {
		d.HTTP.BodyMemory = 256 << 10
		d.HTTP.RequestTimeout = 300 * time.Millisecond
	})
	var writers []*io.PipeWriter
	t.Cleanup(func() {
		for _, w := range writers {
			_ = w.CloseWithError(io.ErrUnexpectedEOF)
		}
	})
	for i := range 8 {
		pr, pw := io.Pipe()
		writers = append(writers, pw)
		req := httptest.NewRequest(http.MethodPost, "/api/v1/posts", pr)
		req.ContentLength = 6 << 20 // announced; with i odd, chunked: the route's limit
		if i%2 == 1 {
			req.ContentLength = -1
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+userToken)
		go hs.serve(req)
		wrote := make(chan error, 1)
		go func() { _, err := io.WriteString(pw, `{"te`); wrote <- err }() // returns once the handler reads
		select {
		case err := <-wrote:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("announced body %d is not being read: its request waits for memory", i)
		}
	}
	start := time.Now()
	rec := hs.do(request{Method: "POST", Path: "/api/v1/posts", Token: userToken, Body: `{"text":"` + strings.Repeat("b", 20<<10) + `"}`})
	if rec.Code != http.StatusCreated || time.Since(start) > time.Second {
		t.Fatalf("beside 8 announced bodies: %d after %s: %s", rec.Code, time.Since(start), rec.Body.String())
	}
}

// TestDecodedTextsKeepTheirShareUntilAnswered: a post's text, once decoded, stays in memory
// until its request is answered, waiting for the database as often as not, so it keeps its
// share of the body budget till then: while adds hold 40 KiB of texts in a 64 KiB budget,
// another body waits for memory and is shed as overloaded; once they are answered the budget
// is whole again. When the share went back after decoding, an outside probe's 600 adds of
// 1 MiB at once on SQLite took the server to 986 MB with a 64 MiB budget.
func TestDecodedTextsKeepTheirShareUntilAnswered(t *testing.T) {
	hs := newHarness(t, func(d *httpapi.RouterDeps) {
		d.HTTP.BodyMemory = 64 << 10
		d.HTTP.RequestTimeout = 300 * time.Millisecond
	})
	entered, release := make(chan struct{}, 4), make(chan struct{})
	hs.posts.adding = func(text string) {
		if strings.HasPrefix(text, "held") {
			entered <- struct{}{}
			<-release
		}
	}
	done := make(chan int, 4)
	for range 4 { // 4 × 10 KiB of decoded text, each body read within the budget alone
		go func() {
			done <- hs.do(request{Method: "POST", Path: "/api/v1/posts", Token: userToken, Body: `{"text":"held` + strings.Repeat("a", 10<<10-4) + `"}`}).Code
		}()
		select {
		case <-entered:
		case <-time.After(5 * time.Second):
			t.Fatal("an add did not reach the service")
		}
	}
	// 12 KiB of text reserves 2.5 times its body while read: more than the 24 KiB left.
	rec := hs.do(request{Method: "POST", Path: "/api/v1/posts", Token: userToken, Body: `{"text":"` + strings.Repeat("b", 12<<10) + `"}`})
	assertProblem(t, rec, http.StatusServiceUnavailable, "overloaded")
	close(release)
	for range 4 {
		if code := <-done; code != http.StatusCreated {
			t.Fatalf("a held add = %d", code)
		}
	}
	if rec := hs.do(request{Method: "POST", Path: "/api/v1/posts", Token: userToken, Body: `{"text":"` + strings.Repeat("c", 20<<10) + `"}`}); rec.Code != http.StatusCreated {
		t.Fatalf("once the adds were answered: %d %s", rec.Code, rec.Body.String())
	}
}
