// Package e2e drives the real server binary over real HTTP, once per database: the same
// process, configuration path and wiring that operators run.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/acme/postsvc/test/contract/storage"
	"github.com/acme/postsvc/test/fakes"
	"github.com/acme/postsvc/test/testdb"
	"github.com/acme/postsvc/test/testredis"
)

// serverBinary is built once by TestMain.
var serverBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "postsvc-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	serverBinary = filepath.Join(dir, "server")
	args := []string{"build", "-o", serverBinary}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "github.com/acme/postsvc/cmd/server")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the server:", err)
		os.Exit(1)
	}
	code := testdb.Main(m)
	storage.Stop()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// serverCommand runs the server binary with env and args. A binary built with -race sleeps a
// second at exit by default, which each of the suite's few hundred runs paid: minutes in all;
// GORACE turns that off.
func serverCommand(ctx context.Context, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, serverBinary, args...)
	cmd.Env = append(slices.Clip(env), "GORACE=atexit_sleep_ms=0")
	return cmd
}

// backend is a database the suite runs against.
type backend struct {
	name string
	// env returns the settings that point a server at a fresh, empty database.
	env func(t *testing.T) []string
}

func backends() []backend {
	return []backend{
		{"sqlite", func(t *testing.T) []string {
			return []string{"APP_DATABASE_DRIVER=sqlite", "APP_DATABASE_DSN=" + filepath.Join(t.TempDir(), "e2e.db")}
		}},
		// MySQL runs as production does, with the Redis that instances share; the
		// multi-instance suite also runs instances on MySQL without Redis.
		{"mysql", func(t *testing.T) []string {
			return append([]string{"APP_DATABASE_DRIVER=mysql", "APP_DATABASE_DSN=" + testdb.MySQLDSN(t)}, redisEnv(t)...)
		}},
	}
}

// redisEnv points a server at the test Redis under a prefix of its own.
func redisEnv(t *testing.T) []string {
	return []string{"APP_REDIS_URL=" + testredis.URL(t), "APP_REDIS_PREFIX=" + testredis.Prefix()}
}

// forEachBackend runs fn as a subtest per database, each with its own server and database.
func forEachBackend(t *testing.T, fn func(t *testing.T, s *server)) {
	t.Helper()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			fn(t, startServer(t, b.env(t)))
		})
	}
}

// server is a running server process.
type server struct {
	t      *testing.T
	base   string
	cmd    *exec.Cmd
	env    []string
	stderr *fakes.LogBuffer
	exited chan struct{}
	// racesChecked is set once stderr has been searched for data races (checkRaces).
	racesChecked bool
}

// startServer launches the binary with env and waits until /readyz answers 200. The process
// is stopped with SIGTERM at the end of the test.
func startServer(t *testing.T, env []string, extra ...string) *server {
	t.Helper()
	port := freePort(t)
	full := append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"APP_ENV=development",
		"APP_DATA_DIR=" + t.TempDir(),
		"APP_HTTP_ADDR=127.0.0.1:" + port,
		"APP_LOG_LEVEL=warn",
	}, env...)
	full = append(full, extra...)
	s := &server{t: t, base: "http://127.0.0.1:" + port, env: full}
	s.start()
	t.Cleanup(s.stop)
	// A failed test shows what the server logged (warn and up: every 5xx with its cause), so
	// that a failure in CI can be understood from its output alone.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the server's log at %s (last lines):\n%s", s.base, lastLines(s.stderr.String(), 40))
		}
	})
	return s
}

// lastLines is the last n lines of text.
func lastLines(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

func (s *server) start() {
	s.t.Helper()
	s.checkRaces() // of the process this one replaces
	s.stderr, s.racesChecked = &fakes.LogBuffer{}, false
	s.cmd = serverCommand(context.Background(), s.env)
	s.cmd.Stdout = io.Discard
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.exited = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			s.t.Fatalf("server exited during start-up:\n%s", s.stderr.String())
		default:
		}
		resp, err := http.Get(s.base + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("server not ready within 60s:\n%s", s.stderr.String())
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	defer s.checkRaces()
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		s.t.Errorf("server did not stop within 30s of SIGTERM")
	}
}

// checkRaces fails the test when the server, built with the race detector, reported a data
// race: the detector prints it to stderr and lets the process go on, so without this check a
// race in the server never failed the suite. Each process's log is checked once, when it is
// stopped or replaced by a new start.
func (s *server) checkRaces() {
	if s.stderr == nil || s.racesChecked {
		return
	}
	s.racesChecked = true
	log := s.stderr.String()
	if i := strings.Index(log, "WARNING: DATA RACE"); i >= 0 {
		s.t.Errorf("the server at %s reported a data race:\n%s", s.base, log[i:min(len(log), i+8000)])
	}
}

// restart stops the process and starts a new one on the same database and data folder.
func (s *server) restart() {
	s.t.Helper()
	s.stop()
	s.start()
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// response is a finished HTTP exchange.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a generic map, failing the test on invalid JSON.
func (r response) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("status %d: body is not a JSON object: %v\n%s", r.Status, err, truncate(r.Body))
	}
	return m
}

func truncate(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "..."
	}
	return string(b)
}

// do sends a request. body may be nil, a []byte/string (sent as is) or any value (JSON-encoded).
func (s *server) do(method, path, token string, body any) response {
	s.t.Helper()
	return s.doWith(method, path, token, body, nil)
}

// doWith is do with extra request headers.
func (s *server) doWith(method, path, token string, body any, headers map[string]string) response {
	s.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = strings.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		r = bytes.NewReader(enc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, r)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	responseHook(s, req, response{Status: resp.StatusCode, Header: resp.Header, Body: data}) // openapi_test.go: validates against the document
	return response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// expect fails the test unless the status matches, showing the body.
func expect(t *testing.T, r response, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, truncate(r.Body))
	}
}

// expectProblem checks a problem document's status and code.
func expectProblem(t *testing.T, r response, status int, code string) map[string]any {
	t.Helper()
	expect(t, r, status)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("content type %q, want application/problem+json", ct)
	}
	m := r.JSON(t)
	if m["code"] != code {
		t.Fatalf("code %v, want %s: %s", m["code"], code, truncate(r.Body))
	}
	if int(m["status"].(float64)) != status || m["title"] == nil || m["type"] == nil {
		t.Fatalf("incomplete problem document: %s", truncate(r.Body))
	}
	return m
}

var emailSeq atomic.Int64

// uniqueEmail returns an address no other test uses.
func uniqueEmail(prefix string) string {
	return fmt.Sprintf("%s-%d-%d@example.io", prefix, time.Now().UnixNano(), emailSeq.Add(1))
}

// account is a signed-up user.
type account struct {
	Email, Password, Access, Refresh, ID string
}

func (s *server) signup(email string) account {
	s.t.Helper()
	pw := "correct horse battery"
	r := s.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": email, "password": pw})
	expect(s.t, r, http.StatusCreated)
	m := r.JSON(s.t)
	u, _ := m["user"].(map[string]any)
	access, _ := m["access_token"].(string)
	refresh, _ := m["refresh_token"].(string)
	id, _ := u["id"].(string)
	return account{Email: email, Password: pw, Access: access, Refresh: refresh, ID: id}
}

func (s *server) addPost(token, text string) string {
	s.t.Helper()
	r := s.do("POST", "/api/v1/posts", token, map[string]any{"text": text})
	expect(s.t, r, http.StatusCreated)
	id, _ := r.JSON(s.t)["id"].(string)
	return id
}
