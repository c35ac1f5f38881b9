package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runUntilExit runs the server binary with env (on top of a clean development setup on
// SQLite) and args, expecting it to stop during start-up, and returns its stderr and exit
// code. A server that starts serving instead is stopped after 30 seconds and fails the test.
func runUntilExit(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := serverCommand(ctx, append([]string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"APP_ENV=development", "APP_DATA_DIR=" + dir,
		"APP_DATABASE_DSN=" + filepath.Join(dir, "e2e.db"),
		"APP_HTTP_ADDR=127.0.0.1:" + freePort(t),
	}, env...), args...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("env %v: the server did not stop during start-up:\n%s", env, stderr.String())
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("running the server: %v", err)
	}
	return stderr.String(), cmd.ProcessState.ExitCode()
}

// TestBadSettingValuesStopStartUpNamingTheSetting runs the real binary with values of the
// wrong type and invalid DSNs: each stops start-up with a non-zero exit status and a message
// naming the APP_ variable, saying what was expected, and showing no password.
func TestBadSettingValuesStopStartUpNamingTheSetting(t *testing.T) {
	const password = "Zq9x7KvQ3mJ8"
	dir := t.TempDir()
	file := filepath.Join(dir, "cfg.yaml")
	if err := os.WriteFile(file, []byte("cache:\n  posts_ttl: 300\nauth:\n  argon2_parallelism: 300\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	typo := filepath.Join(dir, "typo.yaml")
	if err := os.WriteFile(typo, []byte("cache:\n  post_ttl: 1m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	closed := freePort(t) // nothing listens there
	for _, c := range []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"unknown key in the file", nil, []string{"--config", typo},
			[]string{`config file ` + typo + `: "cache.post_ttl" is not a setting; did you mean "cache.posts_ttl" (APP_CACHE_POSTS_TTL)?`}},
		{"mysql not reachable", []string{"APP_DATABASE_DRIVER=mysql", "APP_DATABASE_DSN=app:" + password + "@tcp(127.0.0.1:" + closed + ")/test"}, nil,
			[]string{`APP_DATABASE_DSN: cannot connect to the MySQL database "test" at tcp 127.0.0.1:` + closed + ` as user "app": `, "connection refused"}},
		{"int64 bytes", []string{"APP_ECG_MAX_BODY_BYTES=abc"}, nil,
			[]string{`APP_ECG_MAX_BODY_BYTES (key ecg.max_body_bytes, set in the environment): must be a whole number of bytes`, `got "abc"`}},
		{"duration", []string{"APP_CACHE_POSTS_TTL=xyz"}, nil,
			[]string{`APP_CACHE_POSTS_TTL (key cache.posts_ttl, set in the environment): must be a duration`, `got "xyz"`}},
		{"media bytes", []string{"APP_MEDIA_MAX_FILE_BYTES=abc"}, nil,
			[]string{`APP_MEDIA_MAX_FILE_BYTES (key media.max_file_bytes, set in the environment): must be a whole number of bytes`}},
		{"int", []string{"APP_ECG_WORKERS=two"}, nil,
			[]string{`APP_ECG_WORKERS (key ecg.workers, set in the environment): must be a whole number, got "two"`}},
		{"bool", []string{"APP_DATABASE_MIGRATE_ON_START=maybe"}, nil,
			[]string{`APP_DATABASE_MIGRATE_ON_START (key database.migrate_on_start, set in the environment): must be true or false, got "maybe"`}},
		{"all at once", []string{"APP_ECG_MAX_BODY_BYTES=abc", "APP_CACHE_POSTS_TTL=xyz", "APP_MEDIA_MAX_FILE_BYTES=abc", "APP_ECG_WORKERS=two"}, nil,
			[]string{"APP_ECG_MAX_BODY_BYTES (", "APP_CACHE_POSTS_TTL (", "APP_MEDIA_MAX_FILE_BYTES (", "APP_ECG_WORKERS ("}},
		{"file", nil, []string{"--config", file},
			[]string{"APP_CACHE_POSTS_TTL (key cache.posts_ttl, set in " + file + "): must be a duration with a unit",
				"APP_AUTH_ARGON2_PARALLELISM (key auth.argon2_parallelism, set in " + file + "): must be a whole number from 0 to 255, got 300"}},
		{"mysql DSN", []string{"APP_DATABASE_DRIVER=mysql", "APP_DATABASE_DSN=not a dsn"}, nil,
			[]string{"APP_DATABASE_DSN: is not a valid MySQL DSN", "missing the slash separating the database name"}},
		{"mysql DSN with a password", []string{"APP_DATABASE_DRIVER=mysql", "APP_DATABASE_DSN=app:" + password + "@tcp(127.0.0.1:3306)/test?parseTime=maybe"}, nil,
			[]string{"APP_DATABASE_DSN: is not a valid MySQL DSN", "invalid bool value: maybe"}},
		{"mysql DSN from a flag", []string{"APP_DATABASE_DRIVER=mysql"}, []string{"--database-dsn", "app:" + password + "@tcp(127.0.0.1:3306"},
			[]string{"APP_DATABASE_DSN: is not a valid MySQL DSN"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			stderr, code := runUntilExit(t, c.env, c.args...)
			if code == 0 {
				t.Fatalf("exit status 0, want a failure:\n%s", stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if strings.Contains(stderr, "decoding failed") || strings.Contains(stderr, "strconv.") || strings.Contains(stderr, "gormstore:") ||
				strings.Contains(stderr, "temporarily unavailable") {
				t.Errorf("stderr shows the decoder's or the adapter's words instead of the setting's:\n%s", stderr)
			}
			if strings.Contains(stderr, password[:6]) || strings.Contains(stderr, password[6:]) {
				t.Errorf("stderr shows the password:\n%s", stderr)
			}
		})
	}
}

var saneRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// TestEveryListenerAnswersWithARequestID starts the server with the operations and profiler
// listeners: every answer of every listener carries X-Request-ID, a fresh one or the client's
// sane one echoed, for the scrape, the probes, HEAD, 404s and 405s alike; the operations
// listener's 404s and 405s are problem documents.
func TestEveryListenerAnswersWithARequestID(t *testing.T) {
	opsAddr := "127.0.0.1:" + freePort(t)
	pprofAddr := "127.0.0.1:" + freePort(t)
	s := startServer(t, []string{"APP_DATABASE_DRIVER=sqlite", "APP_DATABASE_DSN=" + filepath.Join(t.TempDir(), "e2e.db")},
		"APP_HTTP_OPS_ADDR="+opsAddr, "APP_HTTP_PPROF_ADDR="+pprofAddr)
	ops, pprof := "http://"+opsAddr, "http://"+pprofAddr
	for _, c := range []struct {
		method, url string
		status      int
	}{
		{http.MethodGet, ops + "/metrics", http.StatusOK},
		{http.MethodHead, ops + "/metrics", http.StatusOK},
		{http.MethodGet, ops + "/livez", http.StatusOK},
		{http.MethodHead, ops + "/livez", http.StatusOK},
		{http.MethodGet, ops + "/readyz", http.StatusOK},
		{http.MethodGet, ops + "/nowhere", http.StatusNotFound},
		{http.MethodHead, ops + "/nowhere", http.StatusNotFound},
		{http.MethodGet, ops + "/api/v1/users/me", http.StatusNotFound},
		{http.MethodPost, ops + "/metrics", http.StatusMethodNotAllowed},
		{http.MethodGet, pprof + "/debug/pprof/", http.StatusOK},
		{http.MethodGet, pprof + "/debug/pprof/heap?debug=1", http.StatusOK},
		{http.MethodGet, pprof + "/nowhere", http.StatusNotFound},
		{http.MethodGet, s.base + "/livez", http.StatusOK},
		{http.MethodGet, s.base + "/metrics", http.StatusNotFound},
		{http.MethodGet, s.base + "/docs/docs.css", http.StatusOK},
		{http.MethodHead, s.base + "/nowhere", http.StatusNotFound},
	} {
		for _, sent := range []string{"", "e2e-check.42", "not sane!"} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			req, err := http.NewRequestWithContext(ctx, c.method, c.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			if sent != "" {
				req.Header.Set("X-Request-ID", sent)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				cancel()
				t.Fatalf("%s %s: %v\n%s", c.method, c.url, err, s.stderr.String())
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			cancel()
			got := resp.Header.Values("X-Request-ID")
			switch {
			case resp.StatusCode != c.status:
				t.Errorf("%s %s: status %d, want %d", c.method, c.url, resp.StatusCode, c.status)
			case len(got) != 1 || !saneRequestID.MatchString(got[0]):
				t.Errorf("%s %s (sent %q): X-Request-ID %q, want one sane id", c.method, c.url, sent, got)
			case sent == "e2e-check.42" && got[0] != sent:
				t.Errorf("%s %s: X-Request-ID %q, want the client's %q echoed", c.method, c.url, got[0], sent)
			case sent == "not sane!" && got[0] == sent:
				t.Errorf("%s %s: an insane X-Request-ID was echoed", c.method, c.url)
			case strings.HasPrefix(c.url, ops) && c.status >= 400 && resp.Header.Get("Content-Type") != "application/problem+json":
				t.Errorf("%s %s: Content-Type %q, want a problem document like the API's", c.method, c.url, resp.Header.Get("Content-Type"))
			}
		}
	}
}
