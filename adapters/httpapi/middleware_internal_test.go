package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

// slowBody delivers its data only after a delay, like a client on a slow link.
type slowBody struct {
	r     io.Reader
	delay time.Duration
	slept bool
}

func (b *slowBody) Read(p []byte) (int, error) {
	if !b.slept {
		b.slept = true
		time.Sleep(b.delay)
	}
	return b.r.Read(p)
}

type markerKey struct{}

// deadlineAfterBody runs the timeout middleware, a middleware that stores a value and spends
// before (standing in for authentication), then decodeJSON; it reports the request context
// the handler is left with once the body is in. The handler stays in flight until the test
// ends, as a handler doing its database work would.
func deadlineAfterBody(t *testing.T, d, before time.Duration, body io.Reader, parent context.Context) context.Context {
	t.Helper()
	s := &server{log: slog.New(slog.DiscardHandler)}
	e := gin.New()
	e.ContextWithFallback = true
	got := make(chan context.Context, 1)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	e.Use(timeout(d), func(c *gin.Context) {
		c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), markerKey{}, "kept"))
		time.Sleep(before)
		c.Next()
	})
	e.POST("/x", func(c *gin.Context) {
		var req newPostRequest
		if !s.decodeJSON(c, bodyOptions{limit: postBodyLimit}, &req) {
			t.Errorf("decode failed: %d", c.Writer.Status())
			return
		}
		got <- c.Request.Context()
		<-release
	})
	req := httptest.NewRequestWithContext(parent, http.MethodPost, "/x", body)
	req.Header.Set("Content-Type", "application/json")
	go e.ServeHTTP(httptest.NewRecorder(), req)
	select {
	case ctx := <-got:
		return ctx
	case <-time.After(5 * time.Second):
		t.Fatal("the handler did not run")
		return nil
	}
}

// TestUploadTimeDoesNotCountAgainstTheRequestTimeout: a body that takes longer than the
// request timeout to arrive leaves the work after it the budget it had before the upload.
func TestUploadTimeDoesNotCountAgainstTheRequestTimeout(t *testing.T) {
	const d = 300 * time.Millisecond
	body := &slowBody{r: strings.NewReader(`{"text":"hello"}`), delay: 2 * d}
	ctx := deadlineAfterBody(t, d, 0, body, context.Background())
	if err := ctx.Err(); err != nil {
		t.Fatalf("after a %s upload the context is done (%v): the upload used up the request timeout", 2*d, err)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		t.Fatal("the request timeout was lost")
	}
	if left := time.Until(deadline); left < d/2 || left > d {
		t.Fatalf("%s of the %s budget left after the upload", left, d)
	}
	if ctx.Value(markerKey{}) != "kept" {
		t.Fatal("a value stored in the request context was lost")
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the moved deadline never ends the work")
	}
}

// TestTimeBeforeTheBodyStillCounts: the budget is one per request: what the request spent
// before reading its body (authentication) is not given back.
func TestTimeBeforeTheBodyStillCounts(t *testing.T) {
	const d, before = 400 * time.Millisecond, 200 * time.Millisecond
	ctx := deadlineAfterBody(t, d, before, strings.NewReader(`{"text":"hello"}`), context.Background())
	deadline, ok := ctx.Deadline()
	if !ok {
		t.Fatal("no deadline")
	}
	if left := time.Until(deadline); left > d-before+50*time.Millisecond {
		t.Fatalf("%s left, want at most %s: the time before the body was refunded", left, d-before)
	}
}

// TestClientGoingAwayStillCancelsAfterTheBody: moving the deadline keeps the cancellation
// net/http signals when the client disconnects.
func TestClientGoingAwayStillCancelsAfterTheBody(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	body := &slowBody{r: strings.NewReader(`{"text":"hello"}`), delay: 50 * time.Millisecond}
	ctx := deadlineAfterBody(t, time.Minute, 0, body, parent)
	cancel()
	select {
	case <-ctx.Done():
		if ctx.Err() != context.Canceled {
			t.Fatalf("err = %v, want context.Canceled", ctx.Err())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the client going away did not cancel the work")
	}
}
