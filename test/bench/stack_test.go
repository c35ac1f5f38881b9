package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/cmd/server/wiring"
	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/test/testdb"
)

func TestMain(m *testing.M) {
	// As cmd/server does: gin's debug mode prints every route of every router built here.
	gin.SetMode(gin.ReleaseMode)
	os.Exit(testdb.Main(m))
}

// hashing selects the argon2id cost of a stack.
type hashing int

const (
	// owaspHashing is the service's default cost, for the benchmarks that measure hashing.
	owaspHashing hashing = iota
	// cheapHashing keeps the setup of the other benchmarks (signing users up) fast.
	cheapHashing
)

// stack is the service as `server serve` builds it, with the same injector
// (wiring.NewServer), minus the listener.
type stack struct {
	cfg    *config.Config
	router http.Handler
	srv    *wiring.Server
}

// database selects where a stack keeps its data.
type database func(testing.TB) config.Database

// sqliteDB is a fresh SQLite file of the test's own.
func sqliteDB(tb testing.TB) config.Database {
	return config.Database{Driver: config.DriverSQLite, DSN: filepath.Join(tb.TempDir(), "bench.db")}
}

// mysqlDB is a fresh database on the MySQL server of TEST_MYSQL_DSN (or Docker's).
func mysqlDB(tb testing.TB) config.Database {
	return config.Database{Driver: config.DriverMySQL, DSN: testdb.MySQLDSN(tb)}
}

// newStack loads the service's real configuration (defaults plus a file that only sets the
// data folder, a JWT secret and the log level the load runner uses), points it at db and
// builds the service with the server's own injector, migrating as the server does at start.
func newStack(tb testing.TB, db database, h hashing) *stack {
	tb.Helper()
	cfg := loadConfig(tb)
	if h == cheapHashing {
		cfg.Auth.Argon2MemoryKiB, cfg.Auth.Argon2Iterations, cfg.Auth.Argon2Parallelism = 64, 1, 1
	}
	d := db(tb)
	cfg.Database.Driver, cfg.Database.DSN = d.Driver, d.DSN
	// Access lines go nowhere, as with APP_LOG_LEVEL=warn: the handler still runs, so the
	// cost of building each line's attributes is measured.
	logger := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, cleanup, err := wiring.NewServer(cfg, logger)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cleanup)
	if err := srv.MigrateIfEnabled(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	return &stack{cfg: cfg, router: srv.Router, srv: srv}
}

func loadConfig(tb testing.TB) *config.Config {
	tb.Helper()
	dir := tb.TempDir()
	file := filepath.Join(dir, "bench.json")
	settings := map[string]any{
		"data_dir": dir,
		"auth":     map[string]any{"jwt_secret": strings.Repeat("b", config.MinSecretBytes)},
		"log":      map[string]any{"level": "warn"},
		// Every signup of a benchmark comes from one address; the per-address signup limit
		// would refuse them after the first 20.
		"throttle": map[string]any{"signup_attempts": 1 << 30},
	}
	raw, err := json.Marshal(settings)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(file, raw, 0o600); err != nil {
		tb.Fatal(err)
	}
	cfg, err := config.Load(file, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

// serve sends one request through the router and returns the recorded response.
func (s *stack) serve(method, path, token string, body []byte) *httptest.ResponseRecorder {
	var r io.Reader = http.NoBody
	if body != nil {
		r = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	req.RemoteAddr = "127.0.0.1:40000"
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	s.router.ServeHTTP(rec, req)
	return rec
}

// expectStatus fails with the response body when the status is not want.
func expectStatus(tb testing.TB, rec *httptest.ResponseRecorder, want int) {
	tb.Helper()
	if rec.Code != want {
		body := rec.Body.String()
		if len(body) > 500 {
			body = body[:500] + "..."
		}
		tb.Fatalf("status %d, want %d: %s", rec.Code, want, body)
	}
}

// account is a signed-up user.
type account struct {
	email, password, token, id string
}

const benchPassword = "correct horse battery staple"

var emailSeq atomic.Int64

func uniqueEmail(prefix string) string {
	return fmt.Sprintf("%s-%d@bench.example.io", prefix, emailSeq.Add(1))
}

// credentials is a signup or login body.
func credentials(tb testing.TB, email string) []byte {
	tb.Helper()
	b, err := json.Marshal(map[string]string{"email": email, "password": benchPassword})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// signup creates an account through the router.
func (s *stack) signup(tb testing.TB) account {
	tb.Helper()
	email := uniqueEmail("user")
	rec := s.serve(http.MethodPost, "/api/v1/auth/signup", "", credentials(tb, email))
	expectStatus(tb, rec, http.StatusCreated)
	var out struct {
		AccessToken string `json:"access_token"`
		User        struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.AccessToken == "" || out.User.ID == "" {
		tb.Fatalf("signup answered %s (%v)", rec.Body.String(), err)
	}
	return account{email: email, password: benchPassword, token: out.AccessToken, id: out.User.ID}
}

// postBody is the JSON body adding a post of n ASCII bytes.
func postBody(tb testing.TB, n int) []byte {
	tb.Helper()
	b, err := json.Marshal(map[string]string{"text": strings.Repeat("x", n)})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// addPosts adds n posts of size bytes for the account through the router.
func (s *stack) addPosts(tb testing.TB, a account, n, size int) {
	tb.Helper()
	body := postBody(tb, size)
	for range n {
		expectStatus(tb, s.serve(http.MethodPost, "/api/v1/posts", a.token, body), http.StatusCreated)
	}
}
