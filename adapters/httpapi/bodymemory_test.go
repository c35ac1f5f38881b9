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

// TestBodyMemoryIsBounded holds the whole body budget with an upload whose body is still
// arriving: another upload then waits for memory, and is shed as overloaded when its deadline
// passes first. Once the first body is in and decoded, uploads go through again.
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
	if _, err := io.WriteString(pw, body[:100]); err != nil { // returns once the handler reads
		t.Fatal(err)
	}

	start := time.Now()
	rec := hs.do(request{Method: "POST", Path: "/api/v1/posts", Token: userToken, Body: `{"text":"small"}`})
	assertProblem(t, rec, http.StatusServiceUnavailable, "overloaded")
	if rec.Header().Get("Retry-After") == "" || time.Since(start) > 2*time.Second {
		t.Fatalf("shed after %s with Retry-After %q", time.Since(start), rec.Header().Get("Retry-After"))
	}

	if _, err := io.WriteString(pw, body[100:]); err != nil {
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
