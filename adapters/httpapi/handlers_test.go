package httpapi_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/posts/post"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/ports/accounts"
	"github.com/acme/postsvc/ports/posts"
)

// assertUserObject checks that v is exactly the contract's user object.
func assertUserObject(t *testing.T, v any) {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("user is %T, want an object", v)
	}
	keys := slices.Sorted(maps.Keys(m))
	if want := []string{"created_at", "email", "id", "name", "role"}; !slices.Equal(keys, want) {
		t.Fatalf("user keys = %v, want %v", keys, want)
	}
	want := map[string]any{"id": "u-alice", "email": "alice@example.com", "name": "Alice", "role": "user", "created_at": "2026-01-02T03:04:05.6Z"}
	if !maps.Equal(m, want) {
		t.Fatalf("user = %v, want %v", m, want)
	}
}

func assertNoSecrets(t *testing.T, body string) {
	t.Helper()
	lower := strings.ToLower(body)
	if strings.Contains(body, string(secretHash)) || strings.Contains(body, "SECRET-HASH") || strings.Contains(lower, "password") || strings.Contains(lower, "argon2") {
		t.Fatalf("response exposes credentials: %s", body)
	}
}

func TestSessionResponses(t *testing.T) {
	cases := []struct {
		path, body string
		status     int
	}{
		{"/api/v1/auth/signup", `{"email":"alice@example.com","password":"password1"}`, 201},
		{"/api/v1/auth/login", `{"email":"alice@example.com","password":"password1"}`, 200},
		{"/api/v1/auth/refresh", `{"refresh_token":"good-refresh"}`, 200},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			hs := newHarness(t)
			rec := hs.do(request{Method: "POST", Path: tc.path, Body: tc.body})
			if rec.Code != tc.status {
				t.Fatalf("status = %d: %s", rec.Code, rec.Body.String())
			}
			assertNoSecrets(t, rec.Body.String())
			m := decodeObject(t, rec)
			if m["access_token"] != "new-access" || m["token_type"] != "Bearer" || m["expires_in"] != float64(900) || m["refresh_token"] != "new-refresh" {
				t.Fatalf("session = %v", m)
			}
			assertUserObject(t, m["user"])
			if len(m) != 5 {
				t.Fatalf("session has extra fields: %v", m)
			}
			if rec.Header().Get("Cache-Control") != "no-store" {
				t.Fatal("token response may be cached")
			}
		})
	}
	hs := newHarness(t)
	assertProblem(t, hs.do(request{Method: "POST", Path: "/api/v1/auth/refresh", Body: `{"refresh_token":"old"}`}), 401, "invalid_refresh_token")
}

func TestUserResponsesHideThePasswordHash(t *testing.T) {
	hs := newHarness(t)
	for _, r := range []request{
		{Method: "GET", Path: "/api/v1/users/me", Token: userToken},
		{Method: "PATCH", Path: "/api/v1/users/me", Token: userToken, Body: `{"name":"Alice"}`},
		{Method: "GET", Path: "/api/v1/admin/users/u-alice", Token: adminToken},
		{Method: "POST", Path: "/api/v1/admin/users", Token: adminToken, Body: `{"email":"a@x.io","password":"password1","name":"A","role":"user"}`},
		{Method: "PATCH", Path: "/api/v1/admin/users/u-alice", Token: adminToken, Body: `{"role":"admin"}`},
	} {
		rec := hs.do(r)
		if rec.Code != 200 && rec.Code != 201 {
			t.Fatalf("%s %s = %d: %s", r.Method, r.Path, rec.Code, rec.Body.String())
		}
		assertNoSecrets(t, rec.Body.String())
		assertUserObject(t, decodeObject(t, rec))
	}
	rec := hs.do(request{Method: "GET", Path: "/api/v1/admin/users", Token: adminToken})
	assertNoSecrets(t, rec.Body.String())
	m := decodeObject(t, rec)
	users, ok := m["users"].([]any)
	if !ok || len(users) != 1 || m["next_cursor"] != "next" {
		t.Fatalf("users page = %v", m)
	}
	assertUserObject(t, users[0])
}

func TestProfilePatch(t *testing.T) {
	str := func(s string) *string { return &s }
	cases := []struct {
		name, body string
		status     int
		want       *string
	}{
		{"rename", `{"name":"Ann"}`, 200, str("Ann")},
		{"clear", `{"name":""}`, 200, str("")},
		{"absent", `{}`, 200, nil},
		{"null", `{"name":null}`, 400, nil},
		{"number", `{"name":7}`, 400, nil},
		{"array", `{"name":["a"]}`, 400, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t)
			rec := hs.do(request{Method: "PATCH", Path: "/api/v1/users/me", Token: userToken, Body: tc.body})
			if tc.status == 400 {
				p := assertProblem(t, rec, 400, "malformed_request")
				if !strings.Contains(p.Detail, `"name" must be a string`) {
					t.Fatalf("detail = %q", p.Detail)
				}
				return
			}
			if rec.Code != tc.status {
				t.Fatalf("status = %d", rec.Code)
			}
			_, arg := hs.auth.last()
			got := arg.(accounts.ProfileUpdate).Name
			if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
				t.Fatalf("UpdateMe name = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAdminUserPatch(t *testing.T) {
	hs := newHarness(t)
	rec := hs.do(request{Method: "PATCH", Path: "/api/v1/admin/users/u-alice", Token: adminToken, Body: `{"role":"admin"}`})
	if rec.Code != 200 {
		t.Fatalf("status = %d", rec.Code)
	}
	_, arg := hs.admin.last()
	if in := arg.(accounts.UserUpdate); in.Name != nil || in.Role == nil || *in.Role != "admin" {
		t.Fatalf("UpdateUser got %+v", in)
	}
	assertProblem(t, hs.do(request{Method: "PATCH", Path: "/api/v1/admin/users/u-alice", Token: adminToken, Body: `{"role":true}`}), 400, "malformed_request")
	assertProblem(t, hs.do(request{Method: "GET", Path: "/api/v1/admin/users/u-bob", Token: adminToken}), 404, "user_not_found")

	rec = hs.do(request{Method: "POST", Path: "/api/v1/admin/users", Token: adminToken, Body: `{"email":"a@x.io","password":"password1","name":"A","role":"admin"}`})
	if rec.Code != 201 || rec.Header().Get("Location") != "/api/v1/admin/users/u-alice" {
		t.Fatalf("create = %d, Location %q", rec.Code, rec.Header().Get("Location"))
	}
	// The admin's address goes along: the new account's password is hashed in its share.
	if _, arg := hs.admin.last(); arg != (accounts.NewUserInput{Email: "a@x.io", Password: "password1", Name: "A", Role: "admin", ClientAddr: "192.0.2.1"}) {
		t.Fatalf("CreateUser got %+v", arg)
	}
	if rec := hs.do(request{Method: "DELETE", Path: "/api/v1/admin/users/u-alice", Token: adminToken}); rec.Code != 204 || rec.Body.Len() != 0 {
		t.Fatalf("delete = %d %q", rec.Code, rec.Body.String())
	}
	if _, arg := hs.admin.last(); arg != "u-alice" {
		t.Fatalf("DeleteUser got %v", arg)
	}
}

func TestListQueryParameters(t *testing.T) {
	cases := []struct {
		name, query string
		limit       int
		cursor      string
		invalid     bool
	}{
		{"defaults", "", 0, "", false},
		{"empty limit", "?limit=", 0, "", false},
		{"limit and cursor", "?limit=50&cursor=abc", 50, "abc", false},
		{"the largest", "?limit=100", 100, "", false},
		{"leading zeros", "?limit=007", 7, "", false},
		{"over the largest", "?limit=101", 0, "", true},
		{"negative", "?limit=-1", 0, "", true},
		{"plus sign", "?limit=%2B5", 0, "", true},
		{"leading space", "?limit=+5", 0, "", true}, // '+' is a space in a query string
		{"trailing space", "?limit=5%20", 0, "", true},
		{"exponent", "?limit=1e2", 0, "", true},
		{"Arabic-Indic digit", "?limit=%D9%A5", 0, "", true},
		{"zero", "?limit=0", 0, "", true},
		{"word", "?limit=ten", 0, "", true},
		{"float", "?limit=2.5", 0, "", true},
		{"huge", "?limit=99999999999999999999", 0, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t)
			rec := hs.do(request{Method: "GET", Path: "/api/v1/posts" + tc.query, Token: userToken})
			recAdmin := hs.do(request{Method: "GET", Path: "/api/v1/admin/users" + tc.query, Token: adminToken})
			if tc.invalid {
				for _, r := range []*struct{ p problemBody }{{assertProblem(t, rec, 422, "validation_failed")}, {assertProblem(t, recAdmin, 422, "validation_failed")}} {
					// One message for every invalid limit, naming the range: the use cases' own.
					if len(r.p.Errors) != 1 || r.p.Errors[0].Field != "limit" ||
						r.p.Errors[0].Message != "must be an integer from 1 to 100, written in the digits 0-9" {
						t.Fatalf("errors = %+v, want the limit field and its range", r.p.Errors)
					}
				}
				if hs.posts.count() != 0 || hs.admin.count() != 0 {
					t.Fatal("the use case ran")
				}
				return
			}
			if rec.Code != 200 || recAdmin.Code != 200 {
				t.Fatalf("status = %d / %d", rec.Code, recAdmin.Code)
			}
			if _, arg := hs.posts.last(); arg != (ports.PageRequest{Limit: tc.limit, Cursor: tc.cursor}) {
				t.Fatalf("List got %+v", arg)
			}
			if _, arg := hs.admin.last(); arg != (accounts.UserListRequest{Limit: tc.limit, Cursor: tc.cursor}) {
				t.Fatalf("ListUsers got %+v", arg)
			}
		})
	}
	hs := newHarness(t)
	hs.do(request{Method: "GET", Path: "/api/v1/admin/users?q=Ali%20ce&cursor=c1", Token: adminToken})
	if _, arg := hs.admin.last(); arg != (accounts.UserListRequest{Query: "Ali ce", Cursor: "c1"}) {
		t.Fatalf("ListUsers got %+v", arg)
	}
	// The use case's own validation errors come back as 422 too.
	hs.posts.list = func(ports.PageRequest) (posts.PostPage, bool, error) {
		return posts.PostPage{}, false, domain.Invalid("cursor", "is not a cursor returned by this endpoint")
	}
	p := assertProblem(t, hs.do(request{Method: "GET", Path: "/api/v1/posts?cursor=zz", Token: userToken}), 422, "validation_failed")
	if p.Errors[0].Field != "cursor" {
		t.Fatalf("errors = %+v", p.Errors)
	}
}

func TestPostPages(t *testing.T) {
	cases := []struct {
		name   string
		page   posts.PostPage
		hit    bool
		cache  string
		cursor any
		count  int
	}{
		{"empty miss", posts.PostPage{}, false, "MISS", nil, 0},
		{"full hit", posts.PostPage{Posts: []*post.Post{
			post.Rehydrate("p-2", "u-alice", "second", epoch), post.Rehydrate("p-1", "u-alice", "first", epoch),
		}, NextCursor: "cur"}, true, "HIT", "cur", 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t)
			hs.posts.list = func(ports.PageRequest) (posts.PostPage, bool, error) { return tc.page, tc.hit, nil }
			rec := hs.do(request{Method: "GET", Path: "/api/v1/posts", Token: userToken})
			if rec.Header().Get("X-Cache") != tc.cache {
				t.Fatalf("X-Cache = %q, want %q", rec.Header().Get("X-Cache"), tc.cache)
			}
			m := decodeObject(t, rec)
			posts, ok := m["posts"].([]any)
			if !ok || len(posts) != tc.count || m["next_cursor"] != tc.cursor {
				t.Fatalf("page = %s", rec.Body.String())
			}
			if !strings.Contains(rec.Body.String(), `"next_cursor":`) {
				t.Fatal("next_cursor must be present, null on the last page")
			}
			if tc.count > 0 {
				first := posts[0].(map[string]any)
				if first["id"] != "p-2" || first["text"] != "second" || first["created_at"] != "2026-01-02T03:04:05.6Z" || len(first) != 3 {
					t.Fatalf("post = %v", first)
				}
			}
		})
	}
}

func TestPostEndpoints(t *testing.T) {
	hs := newHarness(t)
	rec := hs.do(request{Method: "POST", Path: "/api/v1/posts", Token: userToken, Body: `{"text":"hello <world> & \"friends\""}`})
	if rec.Code != http.StatusCreated || rec.Header().Get("Location") != "/api/v1/posts/p-1" {
		t.Fatalf("create = %d, Location %q", rec.Code, rec.Header().Get("Location"))
	}
	m := decodeObject(t, rec)
	if m["id"] != "p-1" || m["text"] != `hello <world> & "friends"` || len(m) != 3 {
		t.Fatalf("post = %v", m)
	}
	assertProblem(t, hs.do(request{Method: "POST", Path: "/api/v1/posts", Token: userToken, Body: `{"text":""}`}), 422, "validation_failed")
	assertProblem(t, hs.do(request{Method: "POST", Path: "/api/v1/posts", Token: userToken, Body: `{}`}), 422, "validation_failed")

	rec = hs.do(request{Method: "GET", Path: "/api/v1/posts/p-9", Token: userToken})
	if rec.Code != 200 || decodeObject(t, rec)["id"] != "p-9" {
		t.Fatalf("get = %d %s", rec.Code, rec.Body.String())
	}
	if rec := hs.do(request{Method: "DELETE", Path: "/api/v1/posts/p-9", Token: userToken}); rec.Code != 204 || rec.Body.Len() != 0 {
		t.Fatalf("delete = %d %q", rec.Code, rec.Body.String())
	}
	assertProblem(t, hs.do(request{Method: "DELETE", Path: "/api/v1/posts/missing", Token: userToken}), 404, "post_not_found")

	// A use case that returns neither a post nor an error is a bug, answered with a 500.
	hs.posts.get = func(context.Context, string) (*post.Post, error) { return nil, nil }
	assertProblem(t, hs.do(request{Method: "GET", Path: "/api/v1/posts/p-1", Token: userToken}), 500, "internal_error")
}

func TestSignupIgnoresRole(t *testing.T) {
	hs := newHarness(t)
	hs.auth.signup = func(in accounts.SignupInput) (accounts.AuthResult, error) {
		u := user.Rehydrate("u-new", in.Email, secretHash, in.Name, identity.RoleUser, epoch, epoch)
		return accounts.AuthResult{AccessToken: "a", RefreshToken: "r", ExpiresInSeconds: 1, User: u}, nil
	}
	rec := hs.do(request{Method: "POST", Path: "/api/v1/auth/signup", Body: `{"email":"e@x.io","password":"password1","role":"admin"}`})
	var got struct {
		User struct{ Role string } `json:"user"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != 201 || got.User.Role != "user" {
		t.Fatalf("signup = %d %s", rec.Code, rec.Body.String())
	}
}
