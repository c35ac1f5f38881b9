package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/acme/postsvc/domain/posts/post"
)

// pacedBody streams data at a steady rate so that the whole body takes about d to send, like
// a client on a slow link. started is closed on the first read: the connection is open and
// the request headers have been written.
type pacedBody struct {
	data    []byte
	sent    int
	d       time.Duration
	begin   time.Time
	started chan struct{}
}

func newPacedBody(data []byte, d time.Duration) *pacedBody {
	return &pacedBody{data: data, d: d, started: make(chan struct{})}
}

func (b *pacedBody) Read(p []byte) (int, error) {
	if b.begin.IsZero() {
		b.begin = time.Now()
		close(b.started)
	}
	if b.sent == len(b.data) {
		return 0, io.EOF
	}
	for {
		// Bytes allowed so far: proportional to the time elapsed, plus a first slice so the
		// upload starts at once.
		allowed := len(b.data)/32 + int(float64(len(b.data))*float64(time.Since(b.begin))/float64(b.d))
		allowed = min(allowed, len(b.data))
		if allowed > b.sent {
			n := copy(p, b.data[b.sent:allowed])
			b.sent += n
			return n, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// uploadResult is the outcome of one slow upload.
type uploadResult struct {
	status int
	body   []byte
	err    error
}

// slowUpload posts a 1 MiB post whose body takes about d to send.
func slowUpload(s *server, token string, d time.Duration) (*pacedBody, <-chan uploadResult) {
	text := strings.Repeat("x", post.MaxTextBytes)
	payload := []byte(`{"text":"` + text + `"}`)
	body := newPacedBody(payload, d)
	out := make(chan uploadResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, "POST", s.base+"/api/v1/posts", body)
		if err != nil {
			out <- uploadResult{err: err}
			return
		}
		req.ContentLength = int64(len(payload))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		// A client of its own: no connection shared with the probes.
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := client.Do(req)
		if err != nil {
			out <- uploadResult{err: err}
			return
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		out <- uploadResult{status: resp.StatusCode, body: data, err: err}
	}()
	return body, out
}

// probe is one /readyz answer (or connection failure) during shutdown.
type probe struct {
	at     time.Duration // since SIGTERM
	status int           // 0 when the connection failed
}

// TestShutdownFinishesSlowUploads sends SIGTERM while four 1 MiB uploads are still streaming
// their bodies (about 2 s each) and checks that every one of them is answered 201, that
// /readyz stops answering 200 at once (503 during the drain delay, APP_HTTP_SHUTDOWN_DELAY;
// refused connections once the listener is closed), and that the process exits with status 0
// within the delay plus the grace period. The default read timeout (60 s) is in force, so this also shows that it leaves
// room for a slow but legitimate upload.
func TestShutdownFinishesSlowUploads(t *testing.T) {
	const (
		uploads    = 4
		uploadTime = 2 * time.Second
		grace      = 10 * time.Second
	)
	// With a delay shorter than what is left of the uploads, they outlive both phases: the
	// drain delay (still listening, /readyz 503) and the graceful shutdown (listener closed).
	delays := []time.Duration{0, 500 * time.Millisecond}
	for _, b := range backends() {
		for _, delay := range delays {
			t.Run(fmt.Sprintf("%s/delay=%s", b.name, delay), func(t *testing.T) {
				s := startServer(t, b.env(t),
					"APP_HTTP_SHUTDOWN_DELAY="+delay.String(),
					"APP_HTTP_SHUTDOWN_GRACE="+grace.String(),
					"APP_LOG_LEVEL=info",
				)
				a := s.signup(uniqueEmail("shutdown"))

				results := make([]<-chan uploadResult, uploads)
				for i := range uploads {
					body, res := slowUpload(s, a.Access, uploadTime)
					results[i] = res
					select {
					case <-body.started:
					case <-time.After(10 * time.Second):
						t.Fatalf("upload %d did not start", i)
					}
				}
				// Mid-way through the bodies.
				time.Sleep(uploadTime / 3)
				sigterm := time.Now()
				if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}

				// Probe /readyz on fresh connections until the uploads are answered.
				var (
					mu     sync.Mutex
					probes []probe
				)
				stopProbing := make(chan struct{})
				probing := sync.WaitGroup{}
				probing.Go(func() {
					client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
					for {
						select {
						case <-stopProbing:
							return
						default:
						}
						p := probe{at: time.Since(sigterm)}
						if resp, err := client.Get(s.base + "/readyz"); err == nil {
							p.status = resp.StatusCode
							_ = resp.Body.Close()
						}
						mu.Lock()
						probes = append(probes, p)
						mu.Unlock()
						time.Sleep(25 * time.Millisecond)
					}
				})

				for i, ch := range results {
					select {
					case r := <-ch:
						if r.err != nil {
							t.Errorf("upload %d: %v", i, r.err)
							continue
						}
						var created struct {
							ID   string `json:"id"`
							Text string `json:"text"`
						}
						if r.status != http.StatusCreated || json.Unmarshal(r.body, &created) != nil || created.ID == "" || len(created.Text) != post.MaxTextBytes {
							t.Errorf("upload %d = %d %s", i, r.status, truncate(r.body))
						}
					case <-time.After(delay + grace + 10*time.Second):
						t.Fatalf("upload %d not answered", i)
					}
				}
				answered := time.Since(sigterm)
				close(stopProbing)
				probing.Wait()

				select {
				case <-s.exited:
				case <-time.After(delay + grace + 5*time.Second):
					t.Fatalf("the process did not exit within the delay and the grace period:\n%s", s.stderr.String())
				}
				exitedAfter := time.Since(sigterm)
				if code := s.cmd.ProcessState.ExitCode(); code != 0 {
					t.Fatalf("exit status %d:\n%s", code, s.stderr.String())
				}
				if exitedAfter > delay+grace {
					t.Errorf("exited %s after SIGTERM, beyond delay+grace %s", exitedAfter, delay+grace)
				}
				if exitedAfter < delay {
					t.Errorf("exited %s after SIGTERM, before the %s drain delay ended", exitedAfter, delay)
				}

				// The signal takes a moment to arrive; after that /readyz never says 200.
				unavailable, refused := 0, 0
				for _, p := range probes {
					switch {
					case p.status == http.StatusOK && p.at > 500*time.Millisecond:
						t.Errorf("/readyz answered 200 %s after SIGTERM", p.at)
					case p.status == http.StatusServiceUnavailable:
						unavailable++
					case p.status == 0:
						refused++
					}
				}
				if delay > 0 && unavailable == 0 {
					t.Errorf("/readyz never answered 503 during the %s drain delay: %v", delay, probes)
				}
				if delay == 0 && refused == 0 {
					t.Errorf("new connections were still accepted after SIGTERM: %v", probes)
				}
				logs := s.stderr.String()
				for _, want := range []string{"shutting down", "stopped"} {
					if !strings.Contains(logs, want) {
						t.Errorf("the log lacks %q:\n%s", want, logs)
					}
				}
				t.Logf("uploads answered %s and process exited %s after SIGTERM; /readyz: %d×503, %d refused", answered.Round(time.Millisecond), exitedAfter.Round(time.Millisecond), unavailable, refused)
			})
		}
	}
}

// TestReadTimeoutBoundsUploads shows that APP_HTTP_READ_TIMEOUT is in force: with a 1 s
// read timeout, a 1 MiB upload sent in 0.3 s is created and one dragged over 3 s is cut off,
// rather than holding a connection open for as long as the client likes.
func TestReadTimeoutBoundsUploads(t *testing.T) {
	s := startServer(t, backends()[0].env(t), "APP_HTTP_READ_TIMEOUT=1s")
	a := s.signup(uniqueEmail("readtimeout"))

	_, fast := slowUpload(s, a.Access, 300*time.Millisecond)
	if r := <-fast; r.err != nil || r.status != http.StatusCreated {
		t.Fatalf("upload within the read timeout = %d %v %s", r.status, r.err, truncate(r.body))
	}
	_, slow := slowUpload(s, a.Access, 3*time.Second)
	if r := <-slow; r.err == nil && r.status == http.StatusCreated {
		t.Fatal("an upload slower than the read timeout was accepted")
	} else {
		t.Logf("slow upload: status %d, error %v", r.status, r.err)
	}
	// The server is still healthy.
	expect(t, s.do("GET", "/readyz", "", nil), http.StatusOK)
}
