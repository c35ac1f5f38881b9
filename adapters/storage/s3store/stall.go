package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// DefaultStallTimeout is what a zero Settings.StallTimeout means.
const DefaultStallTimeout = 10 * time.Second

// stallClient fails a request to the server that makes no progress for timeout: from the
// start until its body has been sent and its answer's headers have come, no part of the body
// taken by the connection and no headers for that long; then, while the caller reads the
// answer's body, one read that waits that long. Without it nothing bounds a server that stops
// answering (a stopped process, a network that drops packets) but the caller's context: the
// connection was made and the body fits the socket's buffers, so an upload, whose files have
// the upload's long bound (APP_MEDIA_UPLOAD_TIMEOUT), waited for the transport's 60 s header
// timeout three times over (the SDK retries it) and its client never had an answer (the
// HTTP server's write timeout had passed). A stall is not retried: a server silent that long
// will not answer the next attempt sooner, and the caller is answered 503 with Retry-After.
//
// The time the caller takes between reads of an answer's body (a client downloading slowly)
// is not counted: only reads that wait on the server are.
type stallClient struct {
	next    aws.HTTPClient
	timeout time.Duration
}

// stallError is the failure of a request that made no progress for the stall timeout.
type stallError struct {
	timeout time.Duration
	err     error
}

func (e *stallError) Error() string {
	return fmt.Sprintf("s3store: the server made no progress for %s: %v", e.timeout, e.err)
}

// RetryableError keeps the SDK from trying the request again (see stallClient).
func (e *stallError) RetryableError() bool { return false }

// Timeout reports the failure as a timeout, like a network one.
func (e *stallError) Timeout() bool { return true }

func (c stallClient) Do(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	w := newWatchdog(c.timeout, cancel)
	req = req.WithContext(ctx)
	if req.Body != nil && req.Body != http.NoBody {
		req.Body = &sentBody{ReadCloser: req.Body, w: w}
	}
	if getBody := req.GetBody; getBody != nil {
		req.GetBody = func() (io.ReadCloser, error) {
			b, err := getBody()
			if err != nil || b == nil || b == http.NoBody {
				return b, err
			}
			return &sentBody{ReadCloser: b, w: w}, nil
		}
	}
	resp, err := c.next.Do(req)
	w.answered()
	if err != nil {
		cancel()
		if w.hasFired() {
			return nil, &stallError{timeout: c.timeout, err: err}
		}
		return nil, err
	}
	resp.Body = &receivedBody{ReadCloser: resp.Body, w: w, cancel: cancel, timeout: c.timeout}
	return resp, nil
}

// sentBody restarts the countdown each time the connection takes more of a request's body.
type sentBody struct {
	io.ReadCloser
	w *watchdog
}

func (b *sentBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.w.sent()
	return n, err
}

// receivedBody counts down only while a read of an answer's body waits.
type receivedBody struct {
	io.ReadCloser
	w       *watchdog
	cancel  context.CancelFunc
	timeout time.Duration
}

func (b *receivedBody) Read(p []byte) (int, error) {
	b.w.arm()
	n, err := b.ReadCloser.Read(p)
	b.w.disarm()
	if err != nil && !errors.Is(err, io.EOF) && b.w.hasFired() {
		err = &stallError{timeout: b.timeout, err: err}
	}
	return n, err
}

func (b *receivedBody) Close() error {
	b.w.disarm()
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// watchdog calls fire once a countdown it was armed with runs out.
type watchdog struct {
	d     time.Duration
	timer *time.Timer
	mu    sync.Mutex
	fired bool
	// done is set once the answer's headers came: what the connection still takes of the
	// request's body then (a server may answer before it read all of it) no longer counts.
	done bool
}

// newWatchdog returns a watchdog counting down already.
func newWatchdog(d time.Duration, fire func()) *watchdog {
	w := &watchdog{d: d}
	w.timer = time.AfterFunc(d, func() {
		w.mu.Lock()
		w.fired = true
		w.mu.Unlock()
		fire()
	})
	return w
}

// arm starts the countdown again from the whole timeout.
func (w *watchdog) arm() { w.timer.Reset(w.d) }

// disarm stops the countdown.
func (w *watchdog) disarm() { w.timer.Stop() }

// sent starts the countdown again while the request waits on the server.
func (w *watchdog) sent() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.timer.Reset(w.d)
	}
}

// answered stops the countdown of the request's sending and waiting for headers.
func (w *watchdog) answered() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
	w.timer.Stop()
}

func (w *watchdog) hasFired() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fired
}
