package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// adminEndpoints are every administration route, with bodies that would succeed for an admin.
func adminEndpoints(targetID string) []struct {
	method, path string
	body         any
} {
	return []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/v1/admin/users", nil},
		{"GET", "/api/v1/admin/users?q=a&limit=5", nil},
		{"GET", "/api/v1/admin/users/" + targetID, nil},
		{"POST", "/api/v1/admin/users", map[string]any{"email": uniqueEmail("made"), "password": "correct horse battery", "role": "admin"}},
		{"PATCH", "/api/v1/admin/users/" + targetID, map[string]any{"role": "user"}},
		{"DELETE", "/api/v1/admin/users/" + targetID, nil},
	}
}

// postEndpoints are every content route, on a post that exists.
func postEndpoints(postID string) []struct {
	method, path string
	body         any
} {
	return []struct {
		method, path string
		body         any
	}{
		{"POST", "/api/v1/posts", map[string]any{"text": "admin writing"}},
		{"GET", "/api/v1/posts", nil},
		{"GET", "/api/v1/posts?limit=1", nil},
		{"GET", "/api/v1/posts/" + postID, nil},
		{"DELETE", "/api/v1/posts/" + postID, nil},
	}
}

func expectForbiddenEverywhere(t *testing.T, s *server, token, who string, routes []struct {
	method, path string
	body         any
},
) {
	t.Helper()
	for _, e := range routes {
		r := s.do(e.method, e.path, token, e.body)
		if r.Status != http.StatusForbidden {
			t.Fatalf("%s: %s %s: status %d, want 403: %s", who, e.method, e.path, r.Status, truncate(r.Body))
		}
		expectProblem(t, r, http.StatusForbidden, "forbidden")
	}
}

func TestAdminsHoldNoContentAndUsersAdministerNothing(t *testing.T) {
	forEachBackendWithAdmin(t, nil, func(t *testing.T, s *server, admin account) {
		u := s.signup(uniqueEmail("plain"))
		postID := s.addPost(u.Access, "mine alone")

		expectForbiddenEverywhere(t, s, admin.Access, "admin on posts", postEndpoints(postID))
		// Nothing the admin tried happened: the post is still there, and the admin has none.
		got := s.do("GET", "/api/v1/posts/"+postID, u.Access, nil)
		expect(t, got, http.StatusOK)
		if got.JSON(t)["text"] != "mine alone" {
			t.Fatalf("post changed: %s", got.Body)
		}

		expectForbiddenEverywhere(t, s, u.Access, "user on admin", adminEndpoints(admin.ID))
		// The user's attempts changed nothing: the admin is still an admin and still exists.
		me := s.do("GET", "/api/v1/users/me", admin.Access, nil)
		expect(t, me, http.StatusOK)
		if me.JSON(t)["role"] != "admin" {
			t.Fatalf("admin demoted by a user: %s", me.Body)
		}
		if n := len(s.directory(admin.Access, "made-", 0)); n != 0 {
			t.Fatalf("a user created %d accounts through the admin endpoint", n)
		}
	})
}

// TestNonAdminsAreRefusedWhateverTheySend: a user, with a session or a personal API key, gets
// 403 forbidden from every administration route whatever the request holds: a malformed or
// oversized body, the wrong content type, invalid values, a bad limit or cursor, a repeated
// parameter, an id no user has. Before, the role was checked after the input was read, so a
// user got 400, 413, 415 or 422 for some of these and 403 for the others.
func TestNonAdminsAreRefusedWhateverTheySend(t *testing.T) {
	forEachBackendWithAdmin(t, nil, func(t *testing.T, s *server, admin account) {
		u := s.signup(uniqueEmail("nosy"))
		r := s.do("POST", "/api/v1/api-keys", u.Access, map[string]any{"name": "nosy script"})
		expect(t, r, http.StatusCreated)
		key, _ := r.JSON(t)["key"].(string)
		jsonBody := map[string]string{"Content-Type": "application/json"}
		for _, c := range []struct {
			method, path, body string
			header             map[string]string
		}{
			{"GET", "/api/v1/admin/users?limit=0", "", nil},
			{"GET", "/api/v1/admin/users?limit=abc", "", nil},
			{"GET", "/api/v1/admin/users?cursor=zzzz", "", nil},
			{"GET", "/api/v1/admin/users?q=a&q=b", "", nil},
			{"GET", "/api/v1/admin/users?q=" + strings.Repeat("a", 300), "", nil},
			{"GET", "/api/v1/admin/users/not-an-id", "", nil},
			{"POST", "/api/v1/admin/users", `{"email":`, jsonBody},
			{"POST", "/api/v1/admin/users", `{"email":5}`, jsonBody},
			{"POST", "/api/v1/admin/users", `{"email":"x","password":"y","role":"boss"}`, jsonBody},
			{"POST", "/api/v1/admin/users", `{"email":"` + strings.Repeat("a", 70000) + `"}`, jsonBody},
			{"POST", "/api/v1/admin/users", `email=x`, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}},
			{"PATCH", "/api/v1/admin/users/" + admin.ID, `{"role":`, jsonBody},
			{"PATCH", "/api/v1/admin/users/" + admin.ID, `{"role":"boss"}`, jsonBody},
			{"PATCH", "/api/v1/admin/users/not-an-id", `{"name":"x"}`, jsonBody},
			{"DELETE", "/api/v1/admin/users/not-an-id", "", nil},
		} {
			for who, token := range map[string]string{"session": u.Access, "api key": key} {
				var body any
				if c.body != "" {
					body = c.body
				}
				r := s.doWith(c.method, c.path, token, body, c.header)
				if r.Status != http.StatusForbidden {
					t.Errorf("a user's %s: %s %s with %.40q: %d, want 403: %s", who, c.method, truncate([]byte(c.path)), c.body, r.Status, truncate(r.Body))
					continue
				}
				expectProblem(t, r, http.StatusForbidden, "forbidden")
			}
		}
		// The admin still gets the answers the input deserves.
		expectProblem(t, s.do("GET", "/api/v1/admin/users?limit=0", admin.Access, nil), http.StatusUnprocessableEntity, "validation_failed")
		expectProblem(t, s.do("POST", "/api/v1/admin/users", admin.Access, `{"email":`), http.StatusBadRequest, "malformed_request")
	})
}

func TestSignupNeverCreatesAnAdmin(t *testing.T) {
	forEachBackendWith(t, nil, func(t *testing.T, s *server) {
		for _, body := range []map[string]any{
			{"email": uniqueEmail("sneaky"), "password": "correct horse battery", "role": "admin"},
			{"email": uniqueEmail("sneaky"), "password": "correct horse battery", "Role": "admin", "user": map[string]any{"role": "admin"}},
		} {
			r := s.do("POST", "/api/v1/auth/signup", "", body)
			expect(t, r, http.StatusCreated)
			m := r.JSON(t)
			if role := m["user"].(map[string]any)["role"]; role != "user" {
				t.Fatalf("signup created role %v", role)
			}
			token := m["access_token"].(string)
			expectProblem(t, s.do("GET", "/api/v1/admin/users", token, nil), http.StatusForbidden, "forbidden")
			expect(t, s.do("GET", "/api/v1/posts", token, nil), http.StatusOK)
		}
	})
}

func TestRoleChangesApplyOnTheNextRequest(t *testing.T) {
	forEachBackendWithAdmin(t, nil, func(t *testing.T, s *server, admin account) {
		u := s.signup(uniqueEmail("climber"))
		s.addPost(u.Access, "before promotion")
		expectProblem(t, s.do("GET", "/api/v1/admin/users", u.Access, nil), http.StatusForbidden, "forbidden")

		r := s.do("PATCH", "/api/v1/admin/users/"+u.ID, admin.Access, map[string]any{"role": "admin"})
		expect(t, r, http.StatusOK)
		if r.JSON(t)["role"] != "admin" {
			t.Fatalf("promotion answer: %s", r.Body)
		}
		// The same token, issued while the user was a user, now carries admin rights...
		expect(t, s.do("GET", "/api/v1/admin/users", u.Access, nil), http.StatusOK)
		expect(t, s.do("GET", "/api/v1/admin/users/"+admin.ID, u.Access, nil), http.StatusOK)
		if got := s.do("GET", "/api/v1/users/me", u.Access, nil).JSON(t)["role"]; got != "admin" {
			t.Fatalf("/users/me role after promotion: %v", got)
		}
		// ...and has lost the content: admins hold none.
		expectForbiddenEverywhere(t, s, u.Access, "promoted user on posts", postEndpoints("whatever"))

		r = s.do("PATCH", "/api/v1/admin/users/"+u.ID, admin.Access, map[string]any{"role": "user"})
		expect(t, r, http.StatusOK)
		expectProblem(t, s.do("GET", "/api/v1/admin/users", u.Access, nil), http.StatusForbidden, "forbidden")
		expectProblem(t, s.do("PATCH", "/api/v1/admin/users/"+admin.ID, u.Access, map[string]any{"role": "user"}), http.StatusForbidden, "forbidden")
		p, list := s.list(u.Access, "")
		if len(p.Posts) != 1 || p.Posts[0].Text != "before promotion" {
			t.Fatalf("the demoted user's posts: %s", list.Body)
		}

		// A token refreshed after a role change reflects the new role too.
		rr := s.refreshWith(u.Refresh)
		expect(t, rr, http.StatusOK)
		if role := rr.JSON(t)["user"].(map[string]any)["role"]; role != "user" {
			t.Fatalf("refreshed session role %v", role)
		}
	})
}

func TestDeletedUsersLoseTokensAndPosts(t *testing.T) {
	forEachBackendWithAdmin(t, nil, func(t *testing.T, s *server, admin account) {
		u := s.signup(uniqueEmail("doomed"))
		second := s.loginAs(u.Email, u.Password)
		for _, text := range []string{"one", "two", "three"} {
			s.addPost(u.Access, text)
		}
		// Warm the post-list cache so that a stale page would be there to serve.
		s.do("GET", "/api/v1/posts", u.Access, nil)
		if r := s.do("GET", "/api/v1/posts", u.Access, nil); r.Header.Get("X-Cache") != "HIT" {
			t.Logf("second list was not a cache hit (X-Cache %q)", r.Header.Get("X-Cache"))
		}

		expect(t, s.do("DELETE", "/api/v1/admin/users/"+u.ID, admin.Access, nil), http.StatusNoContent)
		expectCleanupDone(t, s)

		expectUnauthenticated(t, s, u.Access, "deleted user's token")
		expectUnauthenticated(t, s, second.Access, "deleted user's other session")
		expectProblem(t, s.do("GET", "/api/v1/posts", u.Access, nil), http.StatusUnauthorized, "unauthenticated")
		expectProblem(t, s.do("POST", "/api/v1/posts", second.Access, map[string]any{"text": "ghost"}), http.StatusUnauthorized, "unauthenticated")
		expectRefreshRefused(t, s, u.Refresh, "deleted user's refresh token")
		expectRefreshRefused(t, s, second.Refresh, "deleted user's other refresh token")
		expectProblem(t, s.do("POST", "/api/v1/auth/login", "", map[string]any{"email": u.Email, "password": u.Password}),
			http.StatusUnauthorized, "invalid_credentials")
		expectProblem(t, s.do("GET", "/api/v1/admin/users/"+u.ID, admin.Access, nil), http.StatusNotFound, "user_not_found")

		// The address is free again, and the new account inherits nothing.
		again := s.signup(u.Email)
		if again.ID == u.ID {
			t.Fatal("a new account reused the deleted account's id")
		}
		if p, list := s.list(again.Access, ""); len(p.Posts) != 0 {
			t.Fatalf("a new account with a deleted account's email sees posts: %s", list.Body)
		}
	})
}

func TestAdminDirectorySearchIsLiteralAndCaseInsensitive(t *testing.T) {
	forEachBackendWithAdmin(t, nil, func(t *testing.T, s *server, admin account) {
		users := map[string]struct{ email, name string }{
			"percent":   {"per%cent@example.io", "Percent"},
			"under":     {"under_score@example.io", "Underscore"},
			"apostr":    {"o'brien@example.io", "Apostrophe"},
			"dquote":    {"dquote@example.io", `Say "cheese"`},
			"backslash": {"backslash@example.io", `Back\Slash`},
			"mixed":     {"mixed@example.io", "MiXeD CaSe"},
			"nameonly":  {"plain@example.io", "Hundred % Sure"},
			"sigma":     {"sigma@example.io", "Οδυσσευς"},
		}
		for _, u := range users {
			s.createUser(admin.Access, strings.ToUpper(u.email), u.name, "user")
		}
		cases := []struct {
			q    string
			want []string
		}{
			{"%", []string{"percent", "nameonly"}},
			{"_", []string{"under"}},
			{"'", []string{"apostr"}},
			{`"`, []string{"dquote"}},
			{`\`, []string{"backslash"}},
			{`\s`, []string{"backslash"}},
			{"r%c", []string{"percent"}},
			{"PER%CENT", []string{"percent"}},
			{"R_S", []string{"under"}},
			{"mixed case", []string{"mixed"}},
			{"O'BRIEN", []string{"apostr"}},
			// Case folding: the capital sigma's lower case is σ, the name ends in ς.
			{"ΟΔΥΣΣΕΥΣ", []string{"sigma"}},
			{"δυσσευσ", []string{"sigma"}},
			{"%%", nil},
			{"_ore", nil},
			{"' OR '1'='1", nil},
			{`" OR ""="`, nil},
			{"'; DROP TABLE users; --", nil},
			{"%' OR 1=1 -- ", nil},
			{"!", nil},
			{"[a-z]", nil},
			{"*", nil},
		}
		for _, c := range cases {
			var got []string
			for _, u := range s.directory(admin.Access, c.q, 0) {
				for key, want := range users {
					if u.Email == want.email {
						got = append(got, key)
					}
				}
				if u.Email == admin.Email {
					got = append(got, "admin")
				}
			}
			sort.Strings(got)
			want := append([]string(nil), c.want...)
			sort.Strings(want)
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("q=%q matched %v, want %v", c.q, got, want)
			}
		}
		// Without q, and with a q everyone matches, the directory lists everyone.
		if n := len(s.directory(admin.Access, "", 0)); n != len(users)+1 {
			t.Errorf("directory without q: %d users, want %d", n, len(users)+1)
		}
		if n := len(s.directory(admin.Access, "EXAMPLE.IO", 0)); n != len(users)+1 {
			t.Errorf("q=EXAMPLE.IO: %d users, want %d", n, len(users)+1)
		}
		// Nothing above harmed the table.
		expect(t, s.do("GET", "/api/v1/users/me", admin.Access, nil), http.StatusOK)
		// An overlong q is a validation error, not a slow query.
		expectProblem(t, s.do("GET", "/api/v1/admin/users?q="+strings.Repeat("a", 255), admin.Access, nil), http.StatusUnprocessableEntity, "validation_failed")
	})
}

func TestAdminDirectoryPaging(t *testing.T) {
	forEachBackendWithAdmin(t, nil, func(t *testing.T, s *server, admin account) {
		want := map[string]bool{admin.ID: true}
		for range 6 {
			want[s.createUser(admin.Access, uniqueEmail("pager"), "", "user")] = true
		}
		for _, limit := range []int{1, 2, 3, 100} {
			seen := map[string]int{}
			for _, u := range s.directory(admin.Access, "", limit) {
				seen[u.ID]++
			}
			if len(seen) != len(want) {
				t.Errorf("limit %d: %d distinct users, want %d", limit, len(seen), len(want))
			}
			for id, n := range seen {
				if n != 1 || !want[id] {
					t.Errorf("limit %d: user %s listed %d times (known: %v)", limit, id, n, want[id])
				}
			}
		}
		// Paging a search reaches exactly its matches.
		if n := len(s.directory(admin.Access, "PAGER", 4)); n != 6 {
			t.Errorf("q=PAGER with limit 4: %d users, want 6", n)
		}
		// One page says where the next one starts, and a full page ends with null.
		r := s.do("GET", "/api/v1/admin/users?limit=2", admin.Access, nil)
		expect(t, r, http.StatusOK)
		if m := r.JSON(t); len(m["users"].([]any)) != 2 || m["next_cursor"] == nil {
			t.Fatalf("first page: %s", r.Body)
		}
		r = s.do("GET", "/api/v1/admin/users?limit=100", admin.Access, nil)
		if m := r.JSON(t); m["next_cursor"] != nil {
			t.Fatalf("single page has a next_cursor: %s", r.Body)
		}
		for _, q := range []string{"limit=0", "limit=-1", "limit=101", "limit=abc", "limit=1.5", "cursor=not-a-cursor!", "cursor=%00", "limit=2&cursor=" + url.QueryEscape("' OR 1=1")} {
			expectProblem(t, s.do("GET", "/api/v1/admin/users?"+q, admin.Access, nil), http.StatusUnprocessableEntity, "validation_failed")
		}
		for _, q := range []string{"0", "-1", "101", "%2B5", "1e2", "%D9%A5"} {
			expectFieldMessage(t, s.do("GET", "/api/v1/admin/users?limit="+q, admin.Access, nil), "limit", "must be an integer from 1 to 100, written in the digits 0-9")
		}
	})
}

func TestAdminCreatesReadsUpdatesAndDeletesUsers(t *testing.T) {
	forEachBackendWithAdmin(t, nil, func(t *testing.T, s *server, admin account) {
		email := uniqueEmail("Staff")
		r := s.do("POST", "/api/v1/admin/users", admin.Access, map[string]any{
			"email": email, "password": "staff password 1", "name": "Staff Member", "role": "admin",
		})
		expect(t, r, http.StatusCreated)
		if strings.Contains(strings.ToLower(string(r.Body)), "password") || strings.Contains(string(r.Body), "argon2") {
			t.Fatalf("create response leaks a password or hash: %s", r.Body)
		}
		created := r.JSON(t)
		id, _ := created["id"].(string)
		if created["email"] != strings.ToLower(email) || created["name"] != "Staff Member" || created["role"] != "admin" || id == "" {
			t.Fatalf("created user: %s", r.Body)
		}
		if loc := r.Header.Get("Location"); loc != "/api/v1/admin/users/"+id {
			t.Fatalf("Location %q for id %q", loc, id)
		}
		got := s.do("GET", r.Header.Get("Location"), admin.Access, nil)
		expect(t, got, http.StatusOK)
		if g := got.JSON(t); g["id"] != id || g["email"] != created["email"] || g["role"] != "admin" || g["created_at"] != created["created_at"] {
			t.Fatalf("GET one: %s, created %s", got.Body, r.Body)
		}
		// The role is honoured: the new admin administers and holds no content.
		staff := s.loginAs(email, "staff password 1")
		expect(t, s.do("GET", "/api/v1/admin/users", staff.Access, nil), http.StatusOK)
		expectProblem(t, s.do("GET", "/api/v1/posts", staff.Access, nil), http.StatusForbidden, "forbidden")

		// A created user with role user (and one with the role left out) is a user.
		plainID := s.createUser(admin.Access, uniqueEmail("made"), "", "user")
		r = s.do("POST", "/api/v1/admin/users", admin.Access, map[string]any{"email": uniqueEmail("norole"), "password": "correct horse battery"})
		expect(t, r, http.StatusCreated)
		if r.JSON(t)["role"] != "user" {
			t.Fatalf("create without a role: %s", r.Body)
		}

		// Duplicates, in any case, are conflicts.
		dup := s.do("POST", "/api/v1/admin/users", admin.Access, map[string]any{"email": "  " + strings.ToUpper(email), "password": "another password", "role": "user"})
		expectProblem(t, dup, http.StatusConflict, "email_taken")

		// Invalid fields are named.
		for name, c := range map[string]struct {
			body   map[string]any
			fields []string
		}{
			"bad email":      {map[string]any{"email": "nope", "password": "correct horse battery", "role": "user"}, []string{"email"}},
			"short password": {map[string]any{"email": uniqueEmail("v"), "password": "short", "role": "user"}, []string{"password"}},
			"bad role":       {map[string]any{"email": uniqueEmail("v"), "password": "correct horse battery", "role": "superuser"}, []string{"role"}},
			"long name":      {map[string]any{"email": uniqueEmail("v"), "password": "correct horse battery", "name": strings.Repeat("n", 101)}, []string{"name"}},
			"all wrong":      {map[string]any{"email": "", "password": "", "name": strings.Repeat("n", 101), "role": "root"}, []string{"email", "password", "name", "role"}},
		} {
			m := expectProblem(t, s.do("POST", "/api/v1/admin/users", admin.Access, c.body), http.StatusUnprocessableEntity, "validation_failed")
			have := map[string]bool{}
			errs, _ := m["errors"].([]any)
			for _, e := range errs {
				if f, _ := e.(map[string]any); f["message"] != "" {
					field, _ := f["field"].(string)
					have[field] = true
				}
			}
			for _, f := range c.fields {
				if !have[f] {
					t.Errorf("%s: no error for field %s: %v", name, f, m["errors"])
				}
			}
		}
		expectProblem(t, s.do("POST", "/api/v1/admin/users", admin.Access, `{"email": 1}`), http.StatusBadRequest, "malformed_request")
		if n := len(s.directory(admin.Access, "v-", 0)); n != 0 {
			t.Fatalf("refused creations left %d accounts", n)
		}

		// GET one for unknown ids.
		for _, bad := range []string{"01ARZ3NDEKTSV4RRFFQ69G5FAV", "does-not-exist", "%27%20OR%201%3D1"} {
			expectProblem(t, s.do("GET", "/api/v1/admin/users/"+bad, admin.Access, nil), http.StatusNotFound, "user_not_found")
		}

		// PATCH name, role, or both.
		r = s.do("PATCH", "/api/v1/admin/users/"+plainID, admin.Access, map[string]any{"name": "Renamed"})
		expect(t, r, http.StatusOK)
		if m := r.JSON(t); m["name"] != "Renamed" || m["role"] != "user" {
			t.Fatalf("rename: %s", r.Body)
		}
		r = s.do("PATCH", "/api/v1/admin/users/"+plainID, admin.Access, map[string]any{"role": "admin"})
		expect(t, r, http.StatusOK)
		if m := r.JSON(t); m["name"] != "Renamed" || m["role"] != "admin" {
			t.Fatalf("role change: %s", r.Body)
		}
		r = s.do("PATCH", "/api/v1/admin/users/"+plainID, admin.Access, map[string]any{"name": "Both", "role": "user"})
		expect(t, r, http.StatusOK)
		if m := r.JSON(t); m["name"] != "Both" || m["role"] != "user" {
			t.Fatalf("name and role: %s", r.Body)
		}
		if g := s.do("GET", "/api/v1/admin/users/"+plainID, admin.Access, nil).JSON(t); g["name"] != "Both" || g["role"] != "user" {
			t.Fatalf("PATCH not stored: %v", g)
		}
		for name, body := range map[string]any{
			"bad role":       map[string]any{"role": "superuser"},
			"empty role":     map[string]any{"role": ""},
			"long name":      map[string]any{"name": strings.Repeat("x", 101)},
			"bad role, name": map[string]any{"role": "root", "name": "Fine"},
		} {
			r := s.do("PATCH", "/api/v1/admin/users/"+plainID, admin.Access, body)
			if r.Status != http.StatusUnprocessableEntity {
				t.Errorf("%s: status %d, want 422: %s", name, r.Status, truncate(r.Body))
				continue
			}
			expectProblem(t, r, http.StatusUnprocessableEntity, "validation_failed")
		}
		if g := s.do("GET", "/api/v1/admin/users/"+plainID, admin.Access, nil).JSON(t); g["name"] != "Both" || g["role"] != "user" {
			t.Fatalf("a refused PATCH changed the user: %v", g)
		}
		expectProblem(t, s.do("PATCH", "/api/v1/admin/users/"+plainID, admin.Access, `{"role": null}`), http.StatusBadRequest, "malformed_request")
		expectProblem(t, s.do("PATCH", "/api/v1/admin/users/01ARZ3NDEKTSV4RRFFQ69G5FAV", admin.Access, map[string]any{"name": "x"}), http.StatusNotFound, "user_not_found")
		expectProblem(t, s.do("PATCH", "/api/v1/admin/users/nobody", admin.Access, map[string]any{"role": "admin"}), http.StatusNotFound, "user_not_found")

		// DELETE, then it is gone.
		expect(t, s.do("DELETE", "/api/v1/admin/users/"+plainID, admin.Access, nil), http.StatusNoContent)
		expectProblem(t, s.do("GET", "/api/v1/admin/users/"+plainID, admin.Access, nil), http.StatusNotFound, "user_not_found")
		expectProblem(t, s.do("DELETE", "/api/v1/admin/users/"+plainID, admin.Access, nil), http.StatusNotFound, "user_not_found")
		expectProblem(t, s.do("PATCH", "/api/v1/admin/users/"+plainID, admin.Access, map[string]any{"name": "x"}), http.StatusNotFound, "user_not_found")
		for _, u := range s.directory(admin.Access, "", 0) {
			if u.ID == plainID {
				t.Fatal("a deleted user is still listed")
			}
		}
	})
}

func TestTheLastAdminStays(t *testing.T) {
	forEachBackendWithAdmin(t, nil, func(t *testing.T, s *server, first account) {
		expectProblem(t, s.do("PATCH", "/api/v1/admin/users/"+first.ID, first.Access, map[string]any{"role": "user"}), http.StatusConflict, "last_admin")
		expectProblem(t, s.do("DELETE", "/api/v1/admin/users/"+first.ID, first.Access, nil), http.StatusConflict, "last_admin")
		me := s.do("GET", "/api/v1/users/me", first.Access, nil)
		expect(t, me, http.StatusOK)
		if me.JSON(t)["role"] != "admin" {
			t.Fatalf("the last admin was demoted anyway: %s", me.Body)
		}
		// A rename of the last admin is not a demotion.
		expect(t, s.do("PATCH", "/api/v1/admin/users/"+first.ID, first.Access, map[string]any{"name": "Root", "role": "admin"}), http.StatusOK)

		// With a second admin, one of them may go.
		secondEmail := uniqueEmail("second")
		secondID := s.createUser(first.Access, secondEmail, "", "admin")
		second := s.loginAs(secondEmail, "correct horse battery")
		r := s.do("PATCH", "/api/v1/admin/users/"+first.ID, second.Access, map[string]any{"role": "user"})
		expect(t, r, http.StatusOK)
		if r.JSON(t)["role"] != "user" {
			t.Fatalf("demotion: %s", r.Body)
		}
		expectProblem(t, s.do("GET", "/api/v1/admin/users", first.Access, nil), http.StatusForbidden, "forbidden")

		// Now the second is the last one.
		expectProblem(t, s.do("PATCH", "/api/v1/admin/users/"+secondID, second.Access, map[string]any{"role": "user"}), http.StatusConflict, "last_admin")
		expectProblem(t, s.do("DELETE", "/api/v1/admin/users/"+secondID, second.Access, nil), http.StatusConflict, "last_admin")
		expect(t, s.do("GET", "/api/v1/admin/users", second.Access, nil), http.StatusOK)

		// Promote the first again; then deleting the second admin is allowed.
		expect(t, s.do("PATCH", "/api/v1/admin/users/"+first.ID, second.Access, map[string]any{"role": "admin"}), http.StatusOK)
		expect(t, s.do("DELETE", "/api/v1/admin/users/"+secondID, first.Access, nil), http.StatusNoContent)
		expectUnauthenticated(t, s, second.Access, "deleted admin")
		expectProblem(t, s.do("DELETE", "/api/v1/admin/users/"+first.ID, first.Access, nil), http.StatusConflict, "last_admin")
	})
}

// TestDeletingAUserPromotedMeanwhileKeepsTheLastAdmin deletes a plain user while, in one
// transaction, that user is promoted and the only other admin steps down (what an admin's
// promotion followed by the first admin's own demotion commits). The deletion read the role
// without a lock, so it saw "user", skipped the last-admin check and deleted what had become
// the last admin: 204 and no admin left. Now it reads the committed role under the row lock
// and answers 409 last_admin. MySQL only: SQLite's write transactions run one at a time, so a
// deletion there never reads a role that changes before it commits.
func TestDeletingAUserPromotedMeanwhileKeepsTheLastAdmin(t *testing.T) {
	email := uniqueEmail("root")
	env := withFastHashing("APP_BOOTSTRAP_ADMIN_EMAIL="+email, "APP_BOOTSTRAP_ADMIN_PASSWORD="+adminPassword)
	s := startServer(t, backends()[1].env(t), env...)
	first := s.loginAs(email, adminPassword)
	target := s.signup(uniqueEmail("promoted-meanwhile"))

	db, err := sql.Open("mysql", envValue(s.env, "APP_DATABASE_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, "UPDATE users SET role = 'admin' WHERE id = ?", target.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE users SET role = 'user' WHERE id = ?", first.ID); err != nil {
		t.Fatal(err)
	}

	deleted := make(chan response, 1)
	go func() { deleted <- s.do("DELETE", "/api/v1/admin/users/"+target.ID, first.Access, nil) }()
	// The deletion has read what it reads without a lock once it waits for the lock of the
	// user's row, which this transaction holds.
	for waiting := 0; waiting == 0; {
		err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.processlist
			WHERE db = DATABASE() AND id <> CONNECTION_ID() AND command <> 'Sleep'
			AND info LIKE '%users%FOR UPDATE%' AND info NOT LIKE '%SKIP LOCKED%'`).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-deleted:
			t.Fatalf("the deletion was answered while the promotion was not committed: %d %s", r.Status, truncate(r.Body))
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	r := <-deleted
	var admins int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM users WHERE role = 'admin'").Scan(&admins); err != nil {
		t.Fatal(err)
	}
	if admins == 0 {
		t.Fatalf("no admin left: the deletion of the user promoted meanwhile was answered %d %s", r.Status, truncate(r.Body))
	}
	expectProblem(t, r, http.StatusConflict, "last_admin")
}

// expectCleanupDone waits for the job that a user's deletion enqueues (each context cleaning
// what it keeps outside the database) to have run in the server's own workers: /metrics then
// counts one more attempt done, and none of that kind queued, running or failed.
func expectCleanupDone(t *testing.T, s *server) {
	t.Helper()
	const kind = `{kind="accounts.user_cleanup"}`
	deadline := time.Now().Add(15 * time.Second)
	for {
		text := string(s.do("GET", "/metrics", "", nil).Body)
		done, _ := metricValue(text, `postsvc_jobs_attempts_total{kind="accounts.user_cleanup",outcome="done"}`)
		queued, okQ := metricValue(text, "postsvc_jobs_queued"+kind)
		running, _ := metricValue(text, "postsvc_jobs_running"+kind)
		failed, _ := metricValue(text, "postsvc_jobs_failed"+kind)
		if failed != 0 {
			t.Fatalf("the cleanup job failed:\n%s", text)
		}
		if okQ && done >= 1 && queued == 0 && running == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cleanup job did not run within 15s (done %v, queued %v, running %v)", done, queued, running)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestWritesRacingTheirUsersDeletionAreUnauthenticated adds posts and names the profile in
// bursts while an admin deletes the account: a write either lands first (and goes with the
// account) or finds the account gone, which its caller must learn as 401 unauthenticated, the
// answer of its next request, never 404 "no such user". An outside probe saw 404
// user_not_found on both databases before.
func TestWritesRacingTheirUsersDeletionAreUnauthenticated(t *testing.T) {
	forEachBackendWithAdmin(t, nil, func(t *testing.T, s *server, admin account) {
		for round := range 4 {
			u := s.signup(uniqueEmail("racing-deletion"))
			const n = 24
			answers := make([]response, n)
			var (
				wg      sync.WaitGroup
				deleted response
			)
			for i := range n {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					method, path, body := "POST", "/api/v1/posts", `{"text":"racing"}`
					if i%3 == 2 {
						method, path, body = "PATCH", "/api/v1/users/me", `{"name":"racing"}`
					}
					r, err := s.try(ctx, nil, method, path, u.Access, strings.NewReader(body), map[string]string{"Content-Type": "application/json"})
					if err != nil {
						t.Error(err)
					}
					answers[i] = r
				})
				if i == n/2 {
					wg.Go(func() {
						ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
						defer cancel()
						var err error
						if deleted, err = s.try(ctx, nil, "DELETE", "/api/v1/admin/users/"+u.ID, admin.Access, nil, nil); err != nil {
							t.Error(err)
						}
					})
				}
			}
			wg.Wait()
			expect(t, deleted, http.StatusNoContent)
			for i, r := range answers {
				switch r.Status {
				case http.StatusCreated, http.StatusOK:
				case http.StatusUnauthorized:
					expectProblem(t, r, http.StatusUnauthorized, "unauthenticated")
				default:
					t.Errorf("round %d, write %d racing the deletion: %d %s", round, i, r.Status, truncate(r.Body))
				}
			}
			expectUnauthenticated(t, s, u.Access, "after the deletion")
		}
	})
}

// TestRoleChangesRacingRenamesAreNeverUndone: a role change answered 200 stays, however
// many renames of the same user (by the user, or by an admin) run at the same moment. On
// MySQL each rename read the user without a lock and wrote name and role back, so a rename
// that read before the role change committed wrote the old role over it: 27 of 40 demotions
// were undone in the probe, and a demoted admin kept administering.
func TestRoleChangesRacingRenamesAreNeverUndone(t *testing.T) {
	forEachBackendWithAdmin(t, nil, func(t *testing.T, s *server, admin account) {
		u := s.signup(uniqueEmail("racing-role"))
		lost := 0
		const rounds = 12
		for round := range rounds {
			want := []string{"admin", "user"}[round%2]
			var (
				wg      sync.WaitGroup
				changed response
			)
			send := func(method, path, token, body string, out *response) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				r, err := s.try(ctx, nil, method, path, token, strings.NewReader(body), map[string]string{"Content-Type": "application/json"})
				if err != nil {
					t.Error(err)
				}
				if out != nil {
					*out = r
				} else if r.Status != http.StatusOK {
					t.Errorf("round %d: %s %s = %d %s", round, method, path, r.Status, truncate(r.Body))
				}
			}
			for i := range 10 {
				if i == 3 {
					wg.Go(func() {
						send("PATCH", "/api/v1/admin/users/"+u.ID, admin.Access, `{"role":"`+want+`"}`, &changed)
					})
				}
				body := fmt.Sprintf(`{"name":"rename %d.%d"}`, round, i)
				if i%3 == 0 {
					wg.Go(func() { send("PATCH", "/api/v1/admin/users/"+u.ID, admin.Access, body, nil) })
				} else {
					wg.Go(func() { send("PATCH", "/api/v1/users/me", u.Access, body, nil) })
				}
			}
			wg.Wait()
			expect(t, changed, http.StatusOK)
			r := s.do("GET", "/api/v1/admin/users/"+u.ID, admin.Access, nil)
			expect(t, r, http.StatusOK)
			if got := r.JSON(t)["role"]; got != want {
				lost++
				t.Errorf("round %d: the role change to %q was answered 200, and the stored role is %v", round, want, got)
			}
		}
		if lost > 0 {
			t.Errorf("%d of %d role changes were undone by renames racing them", lost, rounds)
		}
	})
}

// TestAdminDirectoryFindsNamesHoweverAccentsAreTyped: a display name sent with a combining
// accent ("e" and U+0301, as some keyboards and systems send it) is kept in NFC wherever it is
// set (signup, an admin's create, the user's rename), counted in the characters people see,
// and the directory finds it by a query typed either way. Before, the name was kept as typed
// and searched as typed: "étienne" typed precomposed did not find a decomposed "Étienne" (nor
// the other way round), and 60 decomposed "é" were refused as over 100 characters.
func TestAdminDirectoryFindsNamesHoweverAccentsAreTyped(t *testing.T) {
	forEachBackendWithAdmin(t, nil, func(t *testing.T, s *server, admin account) {
		const composed, decomposed = "\u00c9tienne", "E\u0301tienne"
		created := uniqueEmail("created")
		s.createUser(admin.Access, created, decomposed+" Created", "user")
		r := s.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": uniqueEmail("signed"), "password": "correct horse battery", "name": decomposed + " Signed"})
		expect(t, r, http.StatusCreated)
		if got := r.JSON(t)["user"].(map[string]any)["name"]; got != composed+" Signed" {
			t.Errorf("signup stored the name %+q, want the NFC form %+q", got, composed+" Signed")
		}
		renamed := s.signup(uniqueEmail("renamed"))
		r = s.do("PATCH", "/api/v1/users/me", renamed.Access, map[string]any{"name": decomposed + " Renamed"})
		expect(t, r, http.StatusOK)
		if got := r.JSON(t)["name"]; got != composed+" Renamed" {
			t.Errorf("rename stored %+q, want the NFC form %+q", got, composed+" Renamed")
		}
		for _, q := range []string{"\u00e9tienne", "e\u0301tienne", "\u00c9TIENNE", "E\u0301TIENNE"} {
			var got []string
			for _, u := range s.directory(admin.Access, q, 0) {
				got = append(got, u.Name)
			}
			sort.Strings(got)
			want := []string{composed + " Created", composed + " Renamed", composed + " Signed"}
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("q=%+q found %+q, want %+q", q, got, want)
			}
		}
		// 100 decomposed "é" are 100 characters, 101 are too many.
		expect(t, s.do("PATCH", "/api/v1/users/me", renamed.Access, map[string]any{"name": strings.Repeat("e\u0301", 100)}), http.StatusOK)
		expectProblem(t, s.do("PATCH", "/api/v1/users/me", renamed.Access, map[string]any{"name": strings.Repeat("e\u0301", 101)}),
			http.StatusUnprocessableEntity, "validation_failed")
	})
}
