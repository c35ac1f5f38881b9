package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestLogsHoldNoSecrets runs the whole credential life cycle against the real binary with
// debug logging (every access line, the database layer's own logging, both log formats) and
// then searches everything the process wrote for the passwords, tokens and secrets it handled.
// It also checks that the access lines it needs are there: one per request, with the request
// id, route template, status, latency and, when authenticated, the user id.
func TestLogsHoldNoSecrets(t *testing.T) {
	const (
		jwtSecret     = "jwt-secret-for-the-log-test-0123456789abcdef"
		adminPassword = "bootstrap-admin-pw-LOGTEST"
		userPassword  = "user-password-LOGTEST-1"
		wrongPassword = "wrong-password-LOGTEST-2"
	)
	formats := []struct{ name, env string }{
		{"text", "development"},
		{"json", "production"},
	}
	for _, b := range backends() {
		for _, f := range formats {
			t.Run(b.name+"/"+f.name, func(t *testing.T) {
				s := startServer(t, b.env(t),
					"APP_ENV="+f.env,
					"APP_LOG_LEVEL=debug",
					"APP_AUTH_JWT_SECRET="+jwtSecret,
					"APP_BOOTSTRAP_ADMIN_EMAIL="+uniqueEmail("log-admin"),
					"APP_BOOTSTRAP_ADMIN_PASSWORD="+adminPassword,
				)
				email := uniqueEmail("log-user")
				r := s.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": email, "password": userPassword, "name": "Logged"})
				expect(t, r, http.StatusCreated)
				signup := r.JSON(t)

				r = s.do("POST", "/api/v1/auth/login", "", map[string]any{"email": email, "password": userPassword})
				expect(t, r, http.StatusOK)
				login := r.JSON(t)

				r = s.do("POST", "/api/v1/auth/login", "", map[string]any{"email": email, "password": wrongPassword})
				expectProblem(t, r, http.StatusUnauthorized, "invalid_credentials")

				r = s.do("POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": login["refresh_token"]})
				expect(t, r, http.StatusOK)
				refreshed := r.JSON(t)
				// The rotated-out refresh token, replayed: refused (and the family revoked).
				r = s.do("POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": login["refresh_token"]})
				expectProblem(t, r, http.StatusUnauthorized, "invalid_refresh_token")

				access := signup["access_token"].(string)
				req, _ := http.NewRequest("GET", s.base+"/api/v1/users/me", nil)
				req.Header.Set("Authorization", "Bearer "+access)
				req.Header.Set("X-Request-ID", "log-test-me")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("GET /users/me = %d", resp.StatusCode)
				}
				userID := signup["user"].(map[string]any)["id"].(string)
				s.addPost(access, "a post")
				expect(t, s.do("PATCH", "/api/v1/users/me", access, map[string]any{"name": "Renamed"}), http.StatusOK)
				expectProblem(t, s.do("GET", "/api/v1/posts", "not-a-valid-token."+jwtSecret[:10], nil), http.StatusUnauthorized, "unauthenticated")
				// The replay above revoked the refreshed session; log in again to log out.
				r = s.do("POST", "/api/v1/auth/login", "", map[string]any{"email": email, "password": userPassword})
				expect(t, r, http.StatusOK)
				relogin := r.JSON(t)
				expect(t, s.do("POST", "/api/v1/auth/logout", relogin["access_token"].(string), map[string]any{"refresh_token": relogin["refresh_token"]}), http.StatusNoContent)

				// Stop the process first: access lines are written as requests finish, and the
				// pipe from the process is copied asynchronously.
				s.stop()
				logs := s.stderr.String()
				secrets := map[string]string{
					"JWT secret":               jwtSecret,
					"bootstrap admin password": adminPassword,
					"user password":            userPassword,
					"wrong password":           wrongPassword,
				}
				for name, tok := range map[string]any{
					"signup access token": signup["access_token"], "signup refresh token": signup["refresh_token"],
					"login access token": login["access_token"], "login refresh token": login["refresh_token"],
					"refreshed access token": refreshed["access_token"], "refreshed refresh token": refreshed["refresh_token"],
					"second login access token": relogin["access_token"], "second login refresh token": relogin["refresh_token"],
				} {
					v, _ := tok.(string)
					if len(v) < 20 {
						t.Fatalf("%s = %q", name, v)
					}
					secrets[name] = v
					// A JWT's payload and signature are each enough to matter; look for them
					// on their own too, in case a token was logged cut or reformatted.
					if parts := strings.Split(v, "."); len(parts) == 3 {
						secrets[name+" payload"] = parts[1]
						secrets[name+" signature"] = parts[2]
					}
				}
				for name, secret := range secrets {
					if strings.Contains(logs, secret) {
						t.Errorf("the log contains the %s", name)
					}
				}
				if strings.Contains(strings.ToLower(logs), "bearer ") {
					t.Error("the log contains an Authorization header")
				}

				// The access lines are there, with what an operator needs.
				if f.name == "json" {
					assertJSONAccessLine(t, logs, "log-test-me", "/api/v1/users/me", userID)
				} else {
					line := lineWith(logs, "request_id=log-test-me")
					for _, want := range []string{`msg="http request"`, "route=/api/v1/users/me", "status=200", "latency=", "user_id=" + userID} {
						if !strings.Contains(line, want) {
							t.Errorf("access line lacks %s: %s", want, line)
						}
					}
				}
				// One access line per request, each with a request id: count the lines of the
				// requests made above (signup, two logins, two refreshes, me, post, patch,
				// refused list, login, logout).
				if n := strings.Count(logs, "http request"); n < 12 {
					t.Errorf("%d access lines, want at least 12", n)
				}
				if t.Failed() {
					t.Logf("server log:\n%s", logs)
				}
			})
		}
	}
}

// lineWith returns the first log line containing s, or "".
func lineWith(logs, s string) string {
	for line := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}

// assertJSONAccessLine checks that every line is a JSON object and that the access line of
// the request with the given id has the expected fields.
func assertJSONAccessLine(t *testing.T, logs, requestID, route, userID string) {
	t.Helper()
	found := false
	for line := range strings.SplitSeq(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("production log line is not JSON: %q", line)
			continue
		}
		if m["request_id"] != requestID || m["msg"] != "http request" {
			continue
		}
		found = true
		if m["route"] != route || m["status"] != float64(200) || m["user_id"] != userID || m["latency"] == nil || m["method"] != "GET" {
			t.Errorf("access line = %v", m)
		}
	}
	if !found {
		t.Errorf("no access line for request %s", requestID)
	}
}
