package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// adminPassword is the password of every bootstrap admin the suite creates.
const adminPassword = "admin passphrase 42"

// fastHashing makes password hashing cheap. These suites are about sessions, roles and
// throttling, not hashing cost, and they hash hundreds of times: with the production
// parameters a race-instrumented binary spends most of the run in Argon2id, and slow attempts
// also let earlier attempts leave the throttle window between guesses, which blurs the limits
// under test.
var fastHashing = []string{"APP_AUTH_ARGON2_MEMORY_KIB=1024", "APP_AUTH_ARGON2_ITERATIONS=1"}

// withFastHashing returns extra after the fastHashing settings.
func withFastHashing(extra ...string) []string {
	return append(append([]string(nil), fastHashing...), extra...)
}

// forEachBackendWith is forEachBackend with fast hashing and extra settings for each server.
func forEachBackendWith(t *testing.T, extra []string, fn func(t *testing.T, s *server)) {
	t.Helper()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			fn(t, startServer(t, b.env(t), withFastHashing(extra...)...))
		})
	}
}

// forEachBackendWithAdmin starts each server (fast hashing) with bootstrap admin settings (plus extra) and
// hands fn the logged-in first admin.
func forEachBackendWithAdmin(t *testing.T, extra []string, fn func(t *testing.T, s *server, admin account)) {
	t.Helper()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			email := uniqueEmail("root")
			env := withFastHashing(append([]string{"APP_BOOTSTRAP_ADMIN_EMAIL=" + email, "APP_BOOTSTRAP_ADMIN_PASSWORD=" + adminPassword}, extra...)...)
			s := startServer(t, b.env(t), env...)
			fn(t, s, s.loginAs(email, adminPassword))
		})
	}
}

// loginAs opens a new session and fails the test unless it succeeds.
func (s *server) loginAs(email, password string) account {
	s.t.Helper()
	r := s.do("POST", "/api/v1/auth/login", "", map[string]any{"email": email, "password": password})
	expect(s.t, r, http.StatusOK)
	return sessionAccount(s.t, r, email, password)
}

// sessionAccount reads a session response.
func sessionAccount(t *testing.T, r response, email, password string) account {
	t.Helper()
	m := r.JSON(t)
	u, _ := m["user"].(map[string]any)
	access, _ := m["access_token"].(string)
	refresh, _ := m["refresh_token"].(string)
	id, _ := u["id"].(string)
	if access == "" || refresh == "" || id == "" {
		t.Fatalf("incomplete session: %s", truncate(r.Body))
	}
	return account{Email: email, Password: password, Access: access, Refresh: refresh, ID: id}
}

// refreshWith presents a refresh token.
func (s *server) refreshWith(token string) response {
	s.t.Helper()
	return s.do("POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": token})
}

// createUser makes an account through the admin endpoint and returns its id.
func (s *server) createUser(adminToken, email, name, role string) string {
	s.t.Helper()
	r := s.do("POST", "/api/v1/admin/users", adminToken, map[string]any{
		"email": email, "password": "correct horse battery", "name": name, "role": role,
	})
	expect(s.t, r, http.StatusCreated)
	id, _ := r.JSON(s.t)["id"].(string)
	return id
}

// userPage is one page of the admin directory.
type userPage struct {
	Users      []dirUser `json:"users"`
	NextCursor *string   `json:"next_cursor"`
}

// dirUser is a user as the admin directory shows it.
type dirUser struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
	Role  string `json:"role"`
}

// directory lists every user matching q, following next_cursor to the end.
func (s *server) directory(adminToken, q string, limit int) []dirUser {
	s.t.Helper()
	var users []dirUser
	cursor := ""
	for range 1000 {
		v := url.Values{}
		if q != "" {
			v.Set("q", q)
		}
		if limit > 0 {
			v.Set("limit", strconv.Itoa(limit))
		}
		if cursor != "" {
			v.Set("cursor", cursor)
		}
		r := s.do("GET", "/api/v1/admin/users?"+v.Encode(), adminToken, nil)
		expect(s.t, r, http.StatusOK)
		var p userPage
		if err := json.Unmarshal(r.Body, &p); err != nil {
			s.t.Fatalf("directory page: %v: %s", err, truncate(r.Body))
		}
		users = append(users, p.Users...)
		if p.NextCursor == nil {
			return users
		}
		cursor = *p.NextCursor
	}
	s.t.Fatal("directory paging does not end")
	return nil
}

// loginFrom tries a login with an X-Forwarded-For header (none when xff is empty).
func (s *server) loginFrom(xff, email, password string) response {
	s.t.Helper()
	h := map[string]string{}
	if xff != "" {
		h["X-Forwarded-For"] = xff
	}
	return s.doWith("POST", "/api/v1/auth/login", "", map[string]any{"email": email, "password": password}, h)
}

// setEnv replaces (or adds) one setting used by the next restart.
func (s *server) setEnv(name, value string) {
	out := s.env[:0:0]
	for _, kv := range s.env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	s.env = append(out, name+"="+value)
}

// cliResult is a finished command-line run.
type cliResult struct {
	Stdout, Stderr string
	Code           int
}

// baseEnv is what startServer gives every process, without the listen address, plus fast
// hashing.
func baseEnv(t *testing.T, backendEnv []string) []string {
	return append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"APP_ENV=development",
		"APP_DATA_DIR=" + t.TempDir(),
		"APP_LOG_LEVEL=warn",
	}, append(backendEnv, fastHashing...)...)
}

// runCLI runs the server binary with args, env and stdin, and returns what it printed and its
// exit code.
func runCLI(t *testing.T, env []string, stdin string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := serverCommand(ctx, env, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := cliResult{Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.Code = exit.ExitCode()
	default:
		t.Fatalf("running %v: %v", args, err)
	}
	return res
}
