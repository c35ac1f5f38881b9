package e2e

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSignupLoginAndProfile(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *server) {
		email := uniqueEmail("Ada")
		r := s.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": "  " + strings.ToUpper(email) + " ", "password": "correct horse battery", "name": "Ada"})
		expect(t, r, http.StatusCreated)
		if strings.Contains(strings.ToLower(string(r.Body)), "password") || strings.Contains(string(r.Body), "argon2") {
			t.Fatalf("signup response leaks a password or hash: %s", r.Body)
		}
		m := r.JSON(t)
		if m["token_type"] != "Bearer" || m["expires_in"] != float64(900) || m["access_token"] == "" || m["refresh_token"] == "" {
			t.Fatalf("session shape: %s", r.Body)
		}
		u := m["user"].(map[string]any)
		if u["email"] != strings.ToLower(email) || u["role"] != "user" || u["name"] != "Ada" || u["id"] == "" {
			t.Fatalf("user shape: %v", u)
		}
		if _, err := time.Parse(time.RFC3339, u["created_at"].(string)); err != nil || !strings.HasSuffix(u["created_at"].(string), "Z") {
			t.Fatalf("created_at must be RFC 3339 UTC: %v", u["created_at"])
		}

		// The same address in another case is the same account.
		dup := s.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": strings.ToLower(email), "password": "another password"})
		expectProblem(t, dup, http.StatusConflict, "email_taken")

		login := s.do("POST", "/api/v1/auth/login", "", map[string]any{"email": strings.ToUpper(email), "password": "correct horse battery"})
		expect(t, login, http.StatusOK)
		token := login.JSON(t)["access_token"].(string)

		me := s.do("GET", "/api/v1/users/me", token, nil)
		expect(t, me, http.StatusOK)
		if me.JSON(t)["email"] != strings.ToLower(email) || strings.Contains(string(me.Body), "hash") {
			t.Fatalf("me: %s", me.Body)
		}
		patched := s.do("PATCH", "/api/v1/users/me", token, map[string]any{"name": "Ada Lovelace"})
		expect(t, patched, http.StatusOK)
		if patched.JSON(t)["name"] != "Ada Lovelace" {
			t.Fatalf("patch: %s", patched.Body)
		}
		tooLong := s.do("PATCH", "/api/v1/users/me", token, map[string]any{"name": strings.Repeat("n", 101)})
		expectProblem(t, tooLong, http.StatusUnprocessableEntity, "validation_failed")
		// A name may not hold invisible characters (it would look like another name, or reorder
		// the text after it); the joiners of Persian, Indic and emoji spelling are fine.
		for raw, cp := range map[string]string{"Ada\u200b": "U+200B", "\ufeffAda": "U+FEFF", "Ada \u202eecalevoL": "U+202E"} {
			r := s.do("PATCH", "/api/v1/users/me", token, map[string]any{"name": raw})
			expectFieldMessage(t, r, "name", "must not contain invisible or control characters ("+cp+")")
		}
		joined := s.do("PATCH", "/api/v1/users/me", token, map[string]any{"name": "\u0645\u06cc\u200c\u062e\u0648 👩\u200d💻"})
		expect(t, joined, http.StatusOK)
		if got := joined.JSON(t)["name"]; got != "\u0645\u06cc\u200c\u062e\u0648 👩\u200d💻" {
			t.Fatalf("a name with joiners is stored as %+q", got)
		}
	})
}

func TestLoginFailuresLookAlike(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *server) {
		a := s.signup(uniqueEmail("login"))
		wrong := s.do("POST", "/api/v1/auth/login", "", map[string]any{"email": a.Email, "password": "wrong password"})
		unknown := s.do("POST", "/api/v1/auth/login", "", map[string]any{"email": uniqueEmail("nobody"), "password": "wrong password"})
		w := expectProblem(t, wrong, http.StatusUnauthorized, "invalid_credentials")
		u := expectProblem(t, unknown, http.StatusUnauthorized, "invalid_credentials")
		for _, k := range []string{"type", "title", "status", "detail", "code"} {
			if w[k] != u[k] {
				t.Errorf("%s differs between wrong password (%v) and unknown email (%v)", k, w[k], u[k])
			}
		}
	})
}

func TestSignupValidationPerField(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *server) {
		cases := []struct {
			name  string
			body  any
			field string
		}{
			{"email missing", map[string]any{"password": "correct horse"}, "email"},
			{"email invalid", map[string]any{"email": "not-an-address", "password": "correct horse"}, "email"},
			{"email too long", map[string]any{"email": strings.Repeat("a", 250) + "@x.io", "password": "correct horse"}, "email"},
			{"email local part over 64 bytes", map[string]any{"email": strings.Repeat("a", 65) + "@x.io", "password": "correct horse"}, "email"},
			{"password short", map[string]any{"email": uniqueEmail("v"), "password": "1234567"}, "password"},
			{"password over 1024 bytes", map[string]any{"email": uniqueEmail("v"), "password": strings.Repeat("p", 1025)}, "password"},
			{"name too long", map[string]any{"email": uniqueEmail("v"), "password": "correct horse", "name": strings.Repeat("é", 101)}, "name"},
			{"name with a zero width space", map[string]any{"email": uniqueEmail("v"), "password": "correct horse", "name": "Ada\u200b"}, "name"},
			{"name with a bidi override", map[string]any{"email": uniqueEmail("v"), "password": "correct horse", "name": "\u202eAda"}, "name"},
		}
		for _, c := range cases {
			r := s.do("POST", "/api/v1/auth/signup", "", c.body)
			m := expectProblem(t, r, http.StatusUnprocessableEntity, "validation_failed")
			errs, _ := m["errors"].([]any)
			found := false
			for _, e := range errs {
				if f, _ := e.(map[string]any); f["field"] == c.field && f["message"] != "" {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: no error for field %s: %s", c.name, c.field, r.Body)
			}
		}
		// A long passphrase is accepted whole, and only the whole of it logs in.
		long := strings.Repeat("long passphrase ", 64)[:1024]
		email := uniqueEmail("long")
		expect(t, s.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": email, "password": long}), http.StatusCreated)
		expect(t, s.do("POST", "/api/v1/auth/login", "", map[string]any{"email": email, "password": long}), http.StatusOK)
		expectProblem(t, s.do("POST", "/api/v1/auth/login", "", map[string]any{"email": email, "password": long[:1023]}), http.StatusUnauthorized, "invalid_credentials")

		for name, raw := range map[string]string{
			"malformed json": `{"email": "a@x.io", "password": `,
			"wrong type":     `{"email": 42, "password": "correct horse"}`,
			"not an object":  `["a@x.io"]`,
			"trailing data":  `{"email": "a@x.io", "password": "correct horse"} {}`,
		} {
			r := s.do("POST", "/api/v1/auth/signup", "", raw)
			if r.Status != http.StatusBadRequest {
				t.Errorf("%s: status %d, want 400: %s", name, r.Status, r.Body)
				continue
			}
			expectProblem(t, r, http.StatusBadRequest, "malformed_request")
		}
	})
}

func TestBadTokensAreUnauthenticated(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *server) {
		a := s.signup(uniqueEmail("tok"))
		parts := strings.Split(a.Access, ".")
		if len(parts) != 3 {
			t.Fatalf("access token is not a JWT: %q", a.Access)
		}
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var claims map[string]any
		_ = json.Unmarshal(payload, &claims)
		claims["sub"] = "someone-else"
		forged, _ := json.Marshal(claims)
		tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(forged) + "." + parts[2]
		noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
		algNone := noneHeader + "." + parts[1] + "."
		sig := []byte(parts[2])
		sig[0] ^= 1
		wrongSig := parts[0] + "." + parts[1] + "." + string(sig)

		for name, tok := range map[string]string{
			"tampered payload": tampered, "alg none": algNone, "wrong signature": wrongSig,
			"garbage": "not.a.jwt", "refresh token as access token": a.Refresh,
		} {
			r := s.do("GET", "/api/v1/users/me", tok, nil)
			expectProblem(t, r, http.StatusUnauthorized, "unauthenticated")
			if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s: missing WWW-Authenticate: Bearer", name)
			}
		}
		r := s.do("GET", "/api/v1/posts", "", nil)
		expectProblem(t, r, http.StatusUnauthorized, "unauthenticated")
		expect(t, s.do("GET", "/api/v1/users/me", a.Access, nil), http.StatusOK)
	})
}

func TestTokenSignedWithAnotherKeyIsRefused(t *testing.T) {
	a := startServer(t, backends()[0].env(t))
	b := startServer(t, backends()[0].env(t)) // another data folder: another development secret
	acc := a.signup(uniqueEmail("key"))
	expectProblem(t, b.do("GET", "/api/v1/users/me", acc.Access, nil), http.StatusUnauthorized, "unauthenticated")
}

func TestRequestIDAndHealth(t *testing.T) {
	s := startServer(t, backends()[0].env(t))
	expect(t, s.do("GET", "/livez", "", nil), http.StatusOK)
	expect(t, s.do("GET", "/readyz", "", nil), http.StatusOK)
	r := s.do("GET", "/livez", "", nil)
	if r.Header.Get("X-Request-ID") == "" {
		t.Fatal("no X-Request-ID on a response")
	}
	req, _ := http.NewRequest("GET", s.base+"/livez", nil)
	req.Header.Set("X-Request-ID", "client-chosen-42")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if got := resp.Header.Get("X-Request-ID"); got != "client-chosen-42" {
		t.Fatalf("sane client request id not echoed: %q", got)
	}
	expectProblem(t, s.do("GET", "/api/v1/nothing-here", "", nil), http.StatusNotFound, "not_found")
}
