package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// apiKey is a key as the API shows it; Key is set only in the answer to its creation.
type apiKey struct {
	ID         string  `json:"id"`
	Name       string  `json:"name"`
	Prefix     string  `json:"prefix"`
	CreatedAt  string  `json:"created_at"`
	ExpiresAt  *string `json:"expires_at"`
	LastUsedAt *string `json:"last_used_at"`
	Key        string  `json:"key"`
}

// createKey makes a key with a session's access token and fails unless it is answered 201.
func (s *server) createKey(token string, body map[string]any) apiKey {
	s.t.Helper()
	r := s.do("POST", "/api/v1/api-keys", token, body)
	expect(s.t, r, http.StatusCreated)
	var k apiKey
	if err := json.Unmarshal(r.Body, &k); err != nil {
		s.t.Fatal(err)
	}
	return k
}

// listKeys lists the keys of a session's user; it fails if any of them carries its secret.
func (s *server) listKeys(token string) []apiKey {
	s.t.Helper()
	r := s.do("GET", "/api/v1/api-keys", token, nil)
	expect(s.t, r, http.StatusOK)
	var raw struct {
		APIKeys []map[string]any `json:"api_keys"`
	}
	if err := json.Unmarshal(r.Body, &raw); err != nil {
		s.t.Fatal(err)
	}
	var out struct {
		APIKeys []apiKey `json:"api_keys"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil {
		s.t.Fatal(err)
	}
	for _, k := range raw.APIKeys {
		if _, ok := k["key"]; ok {
			s.t.Fatalf("a listed key carries its secret: %s", truncate(r.Body))
		}
	}
	return out.APIKeys
}

// expectKeyRefused checks that a key gets 401 unauthenticated with the bearer challenge.
func expectKeyRefused(t *testing.T, s *server, key, why string) {
	t.Helper()
	r := s.do("GET", "/api/v1/users/me", key, nil)
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("%s: the key still works (status %d): %s", why, r.Status, truncate(r.Body))
	}
	expectProblem(t, r, http.StatusUnauthorized, "unauthenticated")
	if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("%s: no WWW-Authenticate: Bearer challenge", why)
	}
}

func TestAPIKeyLifecycle(t *testing.T) {
	forEachBackendWith(t, nil, func(t *testing.T, s *server) {
		a := s.signup(uniqueEmail("keys"))
		b := s.signup(uniqueEmail("other-keys"))
		r := s.do("POST", "/api/v1/api-keys", a.Access, map[string]any{"name": "  deploy script ", "expires_in_days": 30})
		expect(t, r, http.StatusCreated)
		if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
			t.Errorf("Cache-Control %q on the answer carrying the secret, want no-store", cc)
		}
		var k apiKey
		if err := json.Unmarshal(r.Body, &k); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(k.Key, "pat_") || len(k.Key) != 47 || k.Prefix != k.Key[:12] || k.Name != "deploy script" ||
			k.ExpiresAt == nil || k.LastUsedAt != nil || k.ID == "" {
			t.Fatalf("created key %+v", k)
		}
		created, _ := time.Parse(time.RFC3339Nano, k.CreatedAt)
		expires, _ := time.Parse(time.RFC3339Nano, *k.ExpiresAt)
		if expires.Sub(created) != 30*24*time.Hour {
			t.Errorf("expires_at %s is not 30 days after created_at %s", *k.ExpiresAt, k.CreatedAt)
		}
		forever := s.createKey(a.Access, map[string]any{"name": "forever"})
		if forever.ExpiresAt != nil {
			t.Errorf("a key without expires_in_days expires at %s", *forever.ExpiresAt)
		}

		// Shown once: the list has the keys, newest first, without secrets.
		list := s.listKeys(a.Access)
		if len(list) != 2 || list[0].ID != forever.ID || list[1].ID != k.ID || list[1].Prefix != k.Prefix {
			t.Fatalf("list = %+v", list)
		}
		if len(s.listKeys(b.Access)) != 0 {
			t.Fatal("another user sees the keys")
		}

		// The key acts as its owner wherever a bearer token is accepted.
		me := s.do("GET", "/api/v1/users/me", k.Key, nil)
		expect(t, me, http.StatusOK)
		if me.JSON(t)["id"] != a.ID {
			t.Fatalf("the key is not its owner: %s", me.Body)
		}
		postID := s.addPost(k.Key, "posted with a key")
		expect(t, s.do("GET", "/api/v1/posts/"+postID, a.Access, nil), http.StatusOK)
		page := s.do("GET", "/api/v1/posts", k.Key, nil)
		expect(t, page, http.StatusOK)
		if !strings.Contains(string(page.Body), postID) {
			t.Fatalf("the key's list misses the post: %s", page.Body)
		}

		// Sessions and keys are managed with a session only.
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{"POST", "/api/v1/auth/logout", nil},
			{"POST", "/api/v1/auth/logout", map[string]any{"refresh_token": a.Refresh}},
			{"GET", "/api/v1/api-keys", nil},
			{"POST", "/api/v1/api-keys", map[string]any{"name": "minted by a key"}},
			{"DELETE", "/api/v1/api-keys/" + forever.ID, nil},
			{"DELETE", "/api/v1/api-keys/" + k.ID, nil},
		} {
			m := expectProblem(t, s.do(c.method, c.path, k.Key, c.body), http.StatusForbidden, "forbidden")
			// The kind of credential is refused, not the role: the message says so.
			if d, _ := m["detail"].(string); !strings.Contains(d, "needs a login session") {
				t.Errorf("%s %s with a key: detail %q does not say a login session is needed", c.method, c.path, d)
			}
		}
		expect(t, s.do("GET", "/api/v1/users/me", a.Access, nil), http.StatusOK) // not logged out
		expect(t, s.refreshWith(a.Refresh), http.StatusOK)
		if n := len(s.listKeys(a.Access)); n != 2 {
			t.Fatalf("%d keys after a key tried to mint and delete keys, want 2", n)
		}

		// Keys that are not keys are refused like any bad token.
		for _, bad := range []string{"pat_", "pat_nope", k.Key + "A", k.Key[:46] + "!", "pat_" + strings.Repeat("A", 43), strings.ToUpper(k.Key[:4]) + k.Key[4:]} {
			expectKeyRefused(t, s, bad, "malformed or unknown key "+bad)
		}

		// Forged ids of any shape, and another user's key, are not found.
		theirs := s.createKey(b.Access, map[string]any{"name": "theirs"})
		for _, id := range []string{theirs.ID, "nope", "00000000-0000-7000-8000-000000000000", strings.Repeat("a", 300), "%00", url.PathEscape("é😀"), url.PathEscape("' OR '1'='1")} {
			expectProblem(t, s.do("DELETE", "/api/v1/api-keys/"+id, a.Access, nil), http.StatusNotFound, "api_key_not_found")
		}
		expect(t, s.do("GET", "/api/v1/users/me", theirs.Key, nil), http.StatusOK)

		// Deleting a key refuses it on the very next request; the others keep working.
		expect(t, s.do("DELETE", "/api/v1/api-keys/"+k.ID, a.Access, nil), http.StatusNoContent)
		expectKeyRefused(t, s, k.Key, "deleted key")
		expectProblem(t, s.do("DELETE", "/api/v1/api-keys/"+k.ID, a.Access, nil), http.StatusNotFound, "api_key_not_found")
		expect(t, s.do("GET", "/api/v1/users/me", forever.Key, nil), http.StatusOK)
	})
}

func TestAPIKeyInputErrors(t *testing.T) {
	forEachBackendWith(t, nil, func(t *testing.T, s *server) {
		a := s.signup(uniqueEmail("keys-input"))
		for name, body := range map[string]map[string]any{
			"no name":           {},
			"empty name":        {"name": "   "},
			"long name":         {"name": strings.Repeat("é", 101)},
			"zero days":         {"name": "k", "expires_in_days": 0},
			"negative days":     {"name": "k", "expires_in_days": -1},
			"too many days":     {"name": "k", "expires_in_days": 366},
			"control in name":   {"name": "a\u0000b"},
			"zero width name":   {"name": "\u200b"},
			"invisible in name": {"name": "deploy\ufeff"},
			"bidi in name":      {"name": "deploy \u202etpircs"},
		} {
			r := s.do("POST", "/api/v1/api-keys", a.Access, body)
			if r.Status != http.StatusUnprocessableEntity {
				t.Errorf("%s: status %d, want 422: %s", name, r.Status, truncate(r.Body))
				continue
			}
			expectProblem(t, r, http.StatusUnprocessableEntity, "validation_failed")
		}
		expectFieldMessage(t, s.do("POST", "/api/v1/api-keys", a.Access, map[string]any{"name": "deploy\u200b"}),
			"name", "must not contain invisible or control characters (U+200B)")
		// A JSON number is the right type however it is written; one that is not a plain
		// integer in range is an invalid value, 422 naming the field.
		for _, days := range []string{"1.5", "1e2", "30.0", "-0.5", "99999999999999999999", "1E400"} {
			r := s.do("POST", "/api/v1/api-keys", a.Access, `{"name": "k", "expires_in_days": `+days+`}`)
			if p := expectProblem(t, r, http.StatusUnprocessableEntity, "validation_failed"); !strings.Contains(fmt.Sprint(p["errors"]), "expires_in_days") {
				t.Errorf("expires_in_days %s: errors %v, want the field named", days, p["errors"])
			}
		}
		for name, raw := range map[string]string{
			"days as a string": `{"name": "k", "expires_in_days": "30"}`,
			"name as a number": `{"name": 7}`,
			"not json":         `{"name": `,
		} {
			expectProblem(t, s.do("POST", "/api/v1/api-keys", a.Access, raw), http.StatusBadRequest, "malformed_request")
			_ = name
		}
		// expires_in_days is optional, not nullable: leave it out for a key that never expires.
		// null is the wrong type, 400 as for every other number field, with the same detail.
		for raw, detail := range map[string]string{
			`{"name": "k", "expires_in_days": null}`: `Field "expires_in_days" must be a number, not null.`,
			`{"name": "k", "expires_in_days": "30"}`: `Field "expires_in_days" must be a number.`,
			`{"name": "k", "expires_in_days": [30]}`: `Field "expires_in_days" must be a number.`,
			`{"name": null, "expires_in_days": 30}`:  `Field "name" must be a string, not null.`,
			`{"name": "k", "expires_in_days": true}`: `Field "expires_in_days" must be a number.`,
		} {
			p := expectProblem(t, s.do("POST", "/api/v1/api-keys", a.Access, raw), http.StatusBadRequest, "malformed_request")
			if p["detail"] != detail {
				t.Errorf("%s: detail %q, want %q", raw, p["detail"], detail)
			}
		}
		expectProblem(t, s.do("GET", "/api/v1/api-keys", "", nil), http.StatusUnauthorized, "unauthenticated")
		if n := len(s.listKeys(a.Access)); n != 0 {
			t.Fatalf("%d keys made by refused requests", n)
		}
	})
}

func TestAPIKeyExpiryRoleAndUserDeletion(t *testing.T) {
	forEachBackendWithAdmin(t, nil, func(t *testing.T, s *server, admin account) {
		a := s.signup(uniqueEmail("keys-expiry"))
		short := s.createKey(a.Access, map[string]any{"name": "short", "expires_in_days": 1})
		forever := s.createKey(a.Access, map[string]any{"name": "forever"})

		// A day passes for this key: its expiry is moved to its creation time, in the past.
		// It is moved before the key's first use: an instance keeps a key's principal in
		// memory until the key's own expiry (a unit test of accounts.Principals checks that
		// end), so an edit behind the service's back would show only after
		// accounts.DefaultPrincipalMaxAge.
		db := s.openDB()
		if _, err := db.ExecContext(context.Background(), "UPDATE api_keys SET expires_at = created_at WHERE id = ?", short.ID); err != nil {
			t.Fatal(err)
		}
		expectKeyRefused(t, s, short.Key, "expired key")
		// An expired key no longer counts towards the limit but is still listed.
		if n := len(s.listKeys(a.Access)); n != 2 {
			t.Fatalf("%d keys listed, want 2 (one expired)", n)
		}

		// A key carries its owner's current role: an admin's key is an admin, who holds no content.
		adminKey := s.createKey(admin.Access, map[string]any{"name": "ops"})
		expect(t, s.do("GET", "/api/v1/admin/users", adminKey.Key, nil), http.StatusOK)
		expectProblem(t, s.do("GET", "/api/v1/posts", adminKey.Key, nil), http.StatusForbidden, "forbidden")
		expect(t, s.do("GET", "/api/v1/posts", forever.Key, nil), http.StatusOK)
		expect(t, s.do("PATCH", "/api/v1/admin/users/"+a.ID, admin.Access, map[string]any{"role": "admin"}), http.StatusOK)
		expectProblem(t, s.do("GET", "/api/v1/posts", forever.Key, nil), http.StatusForbidden, "forbidden")
		expect(t, s.do("PATCH", "/api/v1/admin/users/"+a.ID, admin.Access, map[string]any{"role": "user"}), http.StatusOK)
		expect(t, s.do("GET", "/api/v1/posts", forever.Key, nil), http.StatusOK)

		// Deleting the user refuses the key on the very next request, and deletes it.
		expect(t, s.do("DELETE", "/api/v1/admin/users/"+a.ID, admin.Access, nil), http.StatusNoContent)
		expectKeyRefused(t, s, forever.Key, "key of a deleted user")
		if n := count(t, db, "SELECT COUNT(*) FROM api_keys WHERE user_id = ?", a.ID); n != 0 {
			t.Fatalf("%d keys of the deleted user left", n)
		}
	})
}

func TestAPIKeyLimitHoldsUnderConcurrency(t *testing.T) {
	forEachBackendWith(t, nil, func(t *testing.T, s *server) {
		a := s.signup(uniqueEmail("keys-limit"))
		const n = 40
		statuses := make([]int, n)
		codes := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				r, err := s.try(ctx, nil, "POST", "/api/v1/api-keys", a.Access, strings.NewReader(`{"name":"k"}`), nil)
				if err != nil {
					t.Error(err)
					return
				}
				statuses[i] = r.Status
				if r.Status != http.StatusCreated {
					var p struct {
						Code string `json:"code"`
					}
					_ = json.Unmarshal(r.Body, &p)
					codes[i] = p.Code
				}
			})
		}
		wg.Wait()
		created, refused := 0, 0
		for i, st := range statuses {
			switch {
			case st == http.StatusCreated:
				created++
			case st == http.StatusConflict && codes[i] == "too_many_keys":
				refused++
			default:
				t.Errorf("creation %d: status %d code %q", i, st, codes[i])
			}
		}
		if created != 25 || refused != 15 {
			t.Fatalf("%d created and %d refused of %d concurrent creations, want 25 and 15", created, refused, n)
		}
		if got := len(s.listKeys(a.Access)); got != 25 {
			t.Fatalf("%d keys stored, want 25", got)
		}
		expectProblem(t, s.do("POST", "/api/v1/api-keys", a.Access, map[string]any{"name": "26th"}), http.StatusConflict, "too_many_keys")
	})
}

// TestAPIKeyLastUsedIsWrittenInBatches uses a key in a burst on a server that flushes once a
// minute: nothing is written per request, and stopping the server writes the last use.
func TestAPIKeyLastUsedIsWrittenInBatches(t *testing.T) {
	forEachBackendWith(t, []string{"APP_AUTH_KEY_FLUSH_INTERVAL=1m"}, func(t *testing.T, s *server) {
		a := s.signup(uniqueEmail("keys-used"))
		k := s.createKey(a.Access, map[string]any{"name": "busy"})
		idle := s.createKey(a.Access, map[string]any{"name": "idle"})
		before := time.Now().Add(-time.Second)
		for range 30 {
			expect(t, s.do("GET", "/api/v1/users/me", k.Key, nil), http.StatusOK)
		}
		after := time.Now().Add(time.Second)
		for _, got := range s.listKeys(a.Access) {
			if got.LastUsedAt != nil {
				t.Fatalf("last_used_at of %s written during the burst (%s): a write per request", got.Name, *got.LastUsedAt)
			}
		}
		s.restart() // SIGTERM: the uses recorded so far are written before the process exits
		a = s.loginAs(a.Email, a.Password)
		for _, got := range s.listKeys(a.Access) {
			switch got.ID {
			case k.ID:
				if got.LastUsedAt == nil {
					t.Fatal("last_used_at not written at shutdown")
				}
				at, err := time.Parse(time.RFC3339Nano, *got.LastUsedAt)
				if err != nil || at.Before(before) || at.After(after) {
					t.Fatalf("last_used_at %s, want between %s and %s", *got.LastUsedAt, before, after)
				}
			case idle.ID:
				if got.LastUsedAt != nil {
					t.Fatalf("an unused key has last_used_at %s", *got.LastUsedAt)
				}
			}
		}
	})
}

// TestAPIKeyLastUsedLagsByAnIntervalAtMost checks the periodic flush.
func TestAPIKeyLastUsedLagsByAnIntervalAtMost(t *testing.T) {
	forEachBackendWith(t, []string{"APP_AUTH_KEY_FLUSH_INTERVAL=300ms"}, func(t *testing.T, s *server) {
		a := s.signup(uniqueEmail("keys-lag"))
		k := s.createKey(a.Access, map[string]any{"name": "k"})
		expect(t, s.do("GET", "/api/v1/users/me", k.Key, nil), http.StatusOK)
		deadline := time.Now().Add(10 * time.Second)
		for {
			if got := s.listKeys(a.Access); got[0].LastUsedAt != nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("last_used_at not written within 10 s with a 300 ms flush interval")
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}
