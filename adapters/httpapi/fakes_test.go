package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/adapters/accounts/accountshttp"
	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/adapters/posts/postshttp"
	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/accounts/session"
	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/posts/post"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/ports/accounts"
	"github.com/acme/postsvc/ports/posts"
	"github.com/acme/postsvc/test/fakes"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.ReleaseMode)
	os.Exit(m.Run())
}

// Tokens the fake auth service knows.
const (
	userToken  = "user-token"
	adminToken = "admin-token"
)

var (
	alice = identity.Principal{UserID: "u-alice", Role: identity.RoleUser, Credential: identity.Credential{Kind: identity.CredentialSession, ID: "s-alice"}}
	root  = identity.Principal{UserID: "u-root", Role: identity.RoleAdmin, Credential: identity.Credential{Kind: identity.CredentialSession, ID: "s-root"}}
	epoch = time.Date(2026, 1, 2, 3, 4, 5, 600000000, time.UTC)
)

// secretHash is the password hash every fake user carries; it must never reach a response.
const secretHash = user.PasswordHash("$argon2id$v=19$m=65536,t=3,p=2$c2VjcmV0LXNhbHQ$SECRET-HASH-BYTES")

func aliceUser() *user.User {
	return user.Rehydrate("u-alice", "alice@example.com", secretHash, "Alice", identity.RoleUser, epoch, epoch)
}

// calls records what the fakes were asked, for assertions.
type calls struct {
	mu   sync.Mutex
	list []string
	args []any
}

func (c *calls) add(name string, arg any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.list = append(c.list, name)
	c.args = append(c.args, arg)
}

// last returns the last recorded call and its argument.
func (c *calls) last() (string, any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.list) == 0 {
		return "", nil
	}
	return c.list[len(c.list)-1], c.args[len(c.args)-1]
}

func (c *calls) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.list)
}

// fakeAuth is a scriptable accounts.AuthService. A nil hook gives a plausible default answer.
type fakeAuth struct {
	calls
	authenticate func(ctx context.Context, token string) (identity.Principal, error)
	signup       func(in accounts.SignupInput) (accounts.AuthResult, error)
	login        func(in accounts.LoginInput) (accounts.AuthResult, error)
	me           func(ctx context.Context) (*user.User, error)
	logout       func(refresh string) error
}

func (f *fakeAuth) result() accounts.AuthResult {
	return accounts.AuthResult{AccessToken: "new-access", ExpiresInSeconds: 900, RefreshToken: "new-refresh", User: aliceUser()}
}

func (f *fakeAuth) Signup(_ context.Context, in accounts.SignupInput) (accounts.AuthResult, error) {
	f.add("Signup", in)
	if f.signup != nil {
		return f.signup(in)
	}
	return f.result(), nil
}

func (f *fakeAuth) Login(_ context.Context, in accounts.LoginInput) (accounts.AuthResult, error) {
	f.add("Login", in)
	if f.login != nil {
		return f.login(in)
	}
	return f.result(), nil
}

func (f *fakeAuth) Refresh(_ context.Context, token string) (accounts.AuthResult, error) {
	f.add("Refresh", token)
	if token != "good-refresh" {
		return accounts.AuthResult{}, session.ErrInvalidRefreshToken
	}
	return f.result(), nil
}

func (f *fakeAuth) Logout(_ context.Context, p identity.Principal, refresh string) error {
	f.add("Logout", refresh)
	if f.logout != nil {
		return f.logout(refresh)
	}
	return nil
}

// Accepts takes every token: the fake is the only credential scheme.
func (f *fakeAuth) Accepts(string) bool { return true }

func (f *fakeAuth) Authenticate(ctx context.Context, token string) (identity.Principal, error) {
	if f.authenticate != nil {
		return f.authenticate(ctx, token)
	}
	switch token {
	case userToken:
		return alice, nil
	case adminToken:
		return root, nil
	}
	return identity.Principal{}, domain.ErrUnauthenticated
}

func (f *fakeAuth) Me(ctx context.Context, p identity.Principal) (*user.User, error) {
	f.add("Me", p)
	if f.me != nil {
		return f.me(ctx)
	}
	return aliceUser(), nil
}

func (f *fakeAuth) UpdateMe(_ context.Context, _ identity.Principal, in accounts.ProfileUpdate) (*user.User, error) {
	f.add("UpdateMe", in)
	return aliceUser(), nil
}

// fakePosts is a scriptable posts.PostService. Add applies the real text invariant.
type fakePosts struct {
	calls
	get  func(ctx context.Context, id string) (*post.Post, error)
	list func(req ports.PageRequest) (posts.PostPage, bool, error)
	// adding, when set, runs in Add before the post is made (to hold an add in the service).
	adding func(text string)
}

func (f *fakePosts) Add(_ context.Context, p identity.Principal, text string) (*post.Post, error) {
	f.add("Add", text)
	if f.adding != nil {
		f.adding(text)
	}
	return post.New("p-1", p.UserID, text, epoch)
}

func (f *fakePosts) Get(ctx context.Context, p identity.Principal, id string) (*post.Post, error) {
	f.add("Get", id)
	if f.get != nil {
		return f.get(ctx, id)
	}
	return post.Rehydrate(post.ID(id), p.UserID, "hello", epoch), nil
}

func (f *fakePosts) Delete(_ context.Context, _ identity.Principal, id string) error {
	f.add("Delete", id)
	if id == "missing" {
		return post.ErrNotFound
	}
	return nil
}

func (f *fakePosts) List(_ context.Context, _ identity.Principal, req ports.PageRequest) (posts.PostPage, bool, error) {
	f.add("List", req)
	if f.list != nil {
		return f.list(req)
	}
	return posts.PostPage{}, false, nil
}

// fakeAdmin is a recording accounts.AdminService.
type fakeAdmin struct {
	calls
}

func (f *fakeAdmin) ListUsers(_ context.Context, _ identity.Principal, req accounts.UserListRequest) (accounts.UserPage, error) {
	f.add("ListUsers", req)
	return accounts.UserPage{Users: []*user.User{aliceUser()}, NextCursor: "next"}, nil
}

func (f *fakeAdmin) GetUser(_ context.Context, _ identity.Principal, id string) (*user.User, error) {
	f.add("GetUser", id)
	if id != "u-alice" {
		return nil, user.ErrNotFound
	}
	return aliceUser(), nil
}

func (f *fakeAdmin) CreateUser(_ context.Context, _ identity.Principal, in accounts.NewUserInput) (*user.User, error) {
	f.add("CreateUser", in)
	return aliceUser(), nil
}

func (f *fakeAdmin) UpdateUser(_ context.Context, _ identity.Principal, id string, in accounts.UserUpdate) (*user.User, error) {
	f.add("UpdateUser", in)
	return aliceUser(), nil
}

func (f *fakeAdmin) DeleteUser(_ context.Context, _ identity.Principal, id string) error {
	f.add("DeleteUser", id)
	return nil
}

// harness is a router over fresh fakes.
type harness struct {
	t         *testing.T
	h         http.Handler
	auth      *fakeAuth
	posts     *fakePosts
	admin     *fakeAdmin
	readiness *httpapi.Readiness
	logs      *fakes.LogBuffer
}

type harnessOption func(*httpapi.RouterDeps)

func newHarness(t *testing.T, opts ...harnessOption) *harness {
	t.Helper()
	hs := &harness{t: t, auth: &fakeAuth{}, posts: &fakePosts{}, admin: &fakeAdmin{}, logs: &fakes.LogBuffer{}}
	hs.readiness = httpapi.NewReadiness(func(context.Context) error { return nil })
	deps := httpapi.RouterDeps{
		Modules:        []httpapi.Module{accountshttp.New(hs.auth, hs.admin, nil), postshttp.New(hs.posts)},
		Authenticators: []ports.Authenticator{hs.auth},
		Readiness:      hs.readiness,
		Logger:         slog.New(slog.NewJSONHandler(hs.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		HTTP:           config.HTTP{RequestTimeout: 5 * time.Second},
	}
	for _, o := range opts {
		o(&deps)
	}
	if deps.Readiness != nil {
		hs.readiness = deps.Readiness
	}
	h, err := httpapi.NewRouter(deps)
	if err != nil {
		t.Fatal(err)
	}
	hs.h = h
	return hs
}

// request describes one call; Body is sent with Content-Type application/json unless
// Header sets another.
type request struct {
	Method, Path string
	Body         string
	Token        string
	Header       map[string]string
}

func (hs *harness) do(r request) *httptest.ResponseRecorder {
	hs.t.Helper()
	var body io.Reader
	if r.Body != "" {
		body = strings.NewReader(r.Body)
	}
	req := httptest.NewRequest(r.Method, r.Path, body)
	if r.Body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	for k, v := range r.Header {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	return hs.serve(req)
}

func (hs *harness) serve(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	return rec
}

// problemBody is the decoded problem document.
type problemBody struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
	IDs []string `json:"ids"`
}

// assertProblem checks the shape of a problem response and returns it.
func assertProblem(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) problemBody {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, status, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json", ct)
	}
	var p problemBody
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("problem body %q: %v", rec.Body.String(), err)
	}
	if p.Code != code || p.Status != status || p.Type != httpapi.ProblemTypePrefix+code || p.Title == "" || p.Detail == "" {
		t.Fatalf("problem = %+v, want code %q status %d with type, title and detail", p, code, status)
	}
	if rec.Header().Get("X-Request-ID") == "" {
		t.Fatal("problem response without X-Request-ID")
	}
	return p
}

// decodeObject decodes a JSON object response into a generic map.
func decodeObject(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Fatalf("Content-Type = %q, want application/json; charset=utf-8", ct)
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %q: %v", rec.Body.String(), err)
	}
	return m
}

// errSecret is an infrastructure error whose text must never reach a client.
var errSecret = errors.New("dial tcp 10.0.0.7:3306: SQLSTATE 42000 secret-driver-text")
