package e2e

import (
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestSQLiteServesFromOneProcessOnly starts the real binary on a SQLite file, checks that a
// second server on the same file (with another data folder and port) refuses to start with a
// message naming the lock, that the command-line tools still run beside the server, and that
// after the first server is killed with SIGKILL (no shutdown, nothing cleaned up) a new one
// starts at once on the same file, with the data the first one wrote.
func TestSQLiteServesFromOneProcessOnly(t *testing.T) {
	db := filepath.Join(t.TempDir(), "one.db")
	dbEnv := []string{"APP_DATABASE_DRIVER=sqlite", "APP_DATABASE_DSN=" + db}
	first := startServer(t, dbEnv, fastHashing...)
	a := first.signup(uniqueEmail("lock"))
	first.addPost(a.Access, "written by the first server")

	second := runCLI(t, append(baseEnv(t, dbEnv), "APP_HTTP_ADDR=127.0.0.1:"+freePort(t)), "", "serve")
	expectCLIFailure(t, second, "a second server on the same SQLite file",
		"in use by another postsvc process", "pid "+strconv.Itoa(first.cmd.Process.Pid),
		strings.ToLower(db+".lock"), "app_database_driver=mysql")
	// The default command is serve, and refuses the same way.
	expectCLIFailure(t, runCLI(t, append(baseEnv(t, dbEnv), "APP_HTTP_ADDR=127.0.0.1:"+freePort(t)), ""),
		"a second server started without a subcommand", strings.ToLower(db+".lock"))

	// The command-line tools keep nothing in memory and take no lock.
	if r := runCLI(t, first.env, "", "migrate", "status"); r.Code != 0 {
		t.Fatalf("migrate status beside the server: exit %d: %s", r.Code, r.Stderr)
	}
	if r := runCLI(t, first.env, "", "users", "create", "--email", uniqueEmail("lock-cli"), "--password", "cli password 1"); r.Code != 0 {
		t.Fatalf("users create beside the server: exit %d: %s", r.Code, r.Stderr)
	}

	first.kill()
	// Another port and data folder: only the database file is shared.
	third := startServer(t, dbEnv, fastHashing...)
	b := third.loginAs(a.Email, a.Password)
	r := third.do("GET", "/api/v1/posts", b.Access, nil)
	expect(t, r, http.StatusOK)
	if !strings.Contains(string(r.Body), "written by the first server") {
		t.Fatalf("the new server does not see the first one's post: %s", truncate(r.Body))
	}
}
