package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// opsGet fetches a path from the operations listener at base, without the harness's hook:
// the OpenAPI document describes the API's address, not this listener.
func opsGet(t *testing.T, base, path string) (int, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type") + "\n" + string(body), err
}

// TestOpsListenerServesMetricsOnly starts the server with APP_HTTP_OPS_ADDR: /metrics is
// served there and answered 404 on the API's address; the probes answer on both; nothing of
// the API is reachable through the operations listener. After SIGTERM the operations
// listener keeps answering through the shutdown delay (with /readyz at 503) and is closed when
// the process exits.
func TestOpsListenerServesMetricsOnly(t *testing.T) {
	opsBase := "http://127.0.0.1:" + freePort(t)
	const delay = 1500 * time.Millisecond
	s := startServer(t, []string{"APP_DATABASE_DRIVER=sqlite", "APP_DATABASE_DSN=" + filepath.Join(t.TempDir(), "e2e.db")},
		"APP_HTTP_OPS_ADDR="+strings.TrimPrefix(opsBase, "http://"),
		"APP_HTTP_SHUTDOWN_DELAY="+delay.String(),
	)

	expect(t, s.do("GET", "/livez", "", nil), http.StatusOK)
	expectProblem(t, s.do("GET", "/metrics", "", nil), http.StatusNotFound, "not_found")

	status, body, err := opsGet(t, opsBase, "/metrics")
	if err != nil {
		t.Fatalf("operations listener not answering: %v\n%s", err, s.stderr.String())
	}
	if status != http.StatusOK || !strings.HasPrefix(body, "text/plain") {
		t.Fatalf("GET /metrics on the operations listener: %d %.200s", status, body)
	}
	// The API's requests are counted, including the refused /metrics, and by route template.
	for _, series := range []string{
		`postsvc_http_requests_total{method="GET",route="/livez",status="200"}`,
		`postsvc_http_requests_total{method="GET",route="unmatched",status="404"}`,
		"postsvc_db_open_connections",
	} {
		if !strings.Contains(body, series) {
			t.Errorf("the scrape lacks %s", series)
		}
	}

	for _, path := range []string{"/livez", "/readyz"} {
		if status, body, err := opsGet(t, opsBase, path); err != nil || status != http.StatusOK || !strings.Contains(body, `"status":"ok"`) {
			t.Errorf("GET %s on the operations listener: %d %v %.200s", path, status, err, body)
		}
	}
	for _, path := range []string{"/api/v1/users/me", "/openapi.json", "/docs", "/problems/not_found"} {
		if status, _, err := opsGet(t, opsBase, path); err != nil || status != http.StatusNotFound {
			t.Errorf("GET %s on the operations listener: %d %v, want 404", path, status, err)
		}
	}

	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sigterm := time.Now()
	// Within the delay: still scrapable, and readiness reports the shutdown.
	time.Sleep(delay / 3)
	if status, _, err := opsGet(t, opsBase, "/readyz"); err != nil || status != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz on the operations listener during the shutdown delay: %d %v, want 503", status, err)
	}
	if status, _, err := opsGet(t, opsBase, "/metrics"); err != nil || status != http.StatusOK {
		t.Errorf("GET /metrics on the operations listener during the shutdown delay: %d %v, want 200", status, err)
	}
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not exit within 30s of SIGTERM")
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, s.stderr.String())
	}
	if since := time.Since(sigterm); since < delay {
		t.Errorf("exited %s after SIGTERM, before the %s delay ended", since, delay)
	}
	var d net.Dialer
	if conn, err := d.DialContext(context.Background(), "tcp", strings.TrimPrefix(opsBase, "http://")); err == nil {
		_ = conn.Close()
		t.Error("the operations listener still accepts connections after the process exited")
	}
}

// TestOpsListenerAddressInUse checks that a taken operations address stops start-up with a
// message naming the setting, rather than leaving an instance nobody can scrape.
func TestOpsListenerAddressInUse(t *testing.T) {
	var lc net.ListenConfig
	taken, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := serverCommand(ctx, []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"APP_ENV=development", "APP_DATA_DIR=" + dir,
		"APP_DATABASE_DSN=" + filepath.Join(dir, "e2e.db"),
		"APP_HTTP_ADDR=127.0.0.1:" + freePort(t),
		"APP_HTTP_OPS_ADDR=" + taken.Addr().String(),
	})
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "APP_HTTP_OPS_ADDR") {
		t.Fatalf("start-up with a taken operations address: %v\n%s", err, out)
	}
}
