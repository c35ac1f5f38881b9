package e2e

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestProfilerServesOnItsOwnListenerOnly starts the server with APP_HTTP_PPROF_ADDR: the Go
// profiler answers there and never on the API's address.
func TestProfilerServesOnItsOwnListenerOnly(t *testing.T) {
	pprofBase := "http://127.0.0.1:" + freePort(t)
	s := startServer(t, []string{"APP_DATABASE_DRIVER=sqlite", "APP_DATABASE_DSN=" + filepath.Join(t.TempDir(), "e2e.db")},
		"APP_HTTP_PPROF_ADDR="+strings.TrimPrefix(pprofBase, "http://"))

	resp, err := http.Get(pprofBase + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Fatalf("profiler not listening: %v\n%s", err, s.stderr.String())
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "heap profile") {
		t.Fatalf("heap profile: status %d: %.200s", resp.StatusCode, body)
	}
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap"} {
		if r := s.do("GET", path, "", nil); r.Status != http.StatusNotFound {
			t.Errorf("the API address serves %s: status %d", path, r.Status)
		}
	}
}
