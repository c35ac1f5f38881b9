package e2e

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func expectCLIFailure(t *testing.T, r cliResult, what string, mentions ...string) {
	t.Helper()
	if r.Code == 0 {
		t.Fatalf("%s: exit code 0, want a failure; stdout %q stderr %q", what, r.Stdout, r.Stderr)
	}
	for _, m := range mentions {
		if !strings.Contains(strings.ToLower(r.Stderr), m) {
			t.Errorf("%s: the message does not mention %q: %q", what, m, r.Stderr)
		}
	}
}

func TestCLIUsersCreate(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			dbEnv := b.env(t)
			env := baseEnv(t, dbEnv)
			adminEmail := uniqueEmail("Cli-Admin")
			r := runCLI(t, env, "", "users", "create", "--email", adminEmail, "--password", "cli admin password", "--role", "admin", "--name", "Operator")
			if r.Code != 0 {
				t.Fatalf("users create --role admin: exit %d: %s", r.Code, r.Stderr)
			}
			if !strings.Contains(r.Stdout, "admin") || !strings.Contains(r.Stdout, strings.ToLower(adminEmail)) {
				t.Errorf("users create output %q names neither the role nor the account", r.Stdout)
			}
			if strings.Contains(r.Stdout+r.Stderr, "cli admin password") {
				t.Error("the command echoed the password")
			}

			// Without --password, the first line of standard input is the password.
			stdinEmail := uniqueEmail("cli-stdin")
			r = runCLI(t, env, "password from stdin\nignored second line\n", "users", "create", "--email", stdinEmail)
			if r.Code != 0 {
				t.Fatalf("users create reading stdin: exit %d: %s", r.Code, r.Stderr)
			}
			if !strings.Contains(r.Stdout, "user") {
				t.Errorf("default role not reported: %q", r.Stdout)
			}

			expectCLIFailure(t, runCLI(t, env, "", "users", "create", "--email", "not-an-email", "--password", "long enough password"), "bad email", "email")
			expectCLIFailure(t, runCLI(t, env, "", "users", "create", "--email", uniqueEmail("cli"), "--password", "short"), "short password", "password")
			expectCLIFailure(t, runCLI(t, env, "", "users", "create", "--email", uniqueEmail("cli"), "--password", "long enough password", "--role", "superuser"), "bad role", "role")
			expectCLIFailure(t, runCLI(t, env, "", "users", "create", "--email", uniqueEmail("cli")), "no password at all", "password")
			expectCLIFailure(t, runCLI(t, env, "", "users", "create", "--password", "long enough password"), "no email", "email")
			expectCLIFailure(t, runCLI(t, env, "", "users", "create", "--email", strings.ToUpper(adminEmail), "--password", "another password"), "duplicate email", "already")

			r = runCLI(t, env, "", "migrate", "status")
			if r.Code != 0 {
				t.Fatalf("migrate status: exit %d: %s", r.Code, r.Stderr)
			}
			if !regexp.MustCompile(`(?m)^1\s+applied\s+\d{4}-\d\d-\d\dT\S+\s+\S*00001_init\.sql`).MatchString(r.Stdout) {
				t.Errorf("migrate status does not show the first migration applied:\n%s", r.Stdout)
			}

			// The server sees exactly what the command line made.
			s := startServer(t, dbEnv, fastHashing...)
			admin := s.loginAs(adminEmail, "cli admin password")
			me := s.do("GET", "/api/v1/users/me", admin.Access, nil)
			if m := me.JSON(t); m["role"] != "admin" || m["name"] != "Operator" {
				t.Fatalf("CLI admin: %s", me.Body)
			}
			expect(t, s.do("GET", "/api/v1/admin/users", admin.Access, nil), http.StatusOK)
			u := s.loginAs(stdinEmail, "password from stdin")
			if got := s.do("GET", "/api/v1/users/me", u.Access, nil).JSON(t)["role"]; got != "user" {
				t.Fatalf("CLI user role %v", got)
			}
			expectProblem(t, s.do("POST", "/api/v1/auth/login", "", map[string]any{"email": stdinEmail, "password": "password from stdin\nignored second line"}),
				http.StatusUnauthorized, "invalid_credentials")
			if n := len(s.directory(admin.Access, "", 0)); n != 2 {
				t.Fatalf("refused commands created accounts: %d users, want 2", n)
			}

			// The command also works next to a running server, on the same database.
			lateEmail := uniqueEmail("cli-late")
			r = runCLI(t, s.env, "", "users", "create", "--email", lateEmail, "--password", "late password 1")
			if r.Code != 0 {
				t.Fatalf("users create next to a running server: exit %d: %s", r.Code, r.Stderr)
			}
			s.loginAs(lateEmail, "late password 1")
		})
	}
}

func TestBootstrapAdminIsCreatedOnceOnly(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			email := uniqueEmail("boot")
			s := startServer(t, b.env(t), withFastHashing("APP_BOOTSTRAP_ADMIN_EMAIL="+email, "APP_BOOTSTRAP_ADMIN_PASSWORD=first boot password")...)
			admin := s.loginAs(email, "first boot password")
			if role := s.do("GET", "/api/v1/users/me", admin.Access, nil).JSON(t)["role"]; role != "admin" {
				t.Fatalf("bootstrap account role %v", role)
			}
			countAdmins := func() int {
				n := 0
				for _, u := range s.directory(admin.Access, "", 0) {
					if u.Role == "admin" {
						n++
					}
				}
				return n
			}
			if n := countAdmins(); n != 1 {
				t.Fatalf("%d admins after first start, want 1", n)
			}

			// Restarting with other bootstrap settings changes nothing.
			s.setEnv("APP_BOOTSTRAP_ADMIN_PASSWORD", "second boot password")
			s.restart()
			expectProblem(t, s.do("POST", "/api/v1/auth/login", "", map[string]any{"email": email, "password": "second boot password"}),
				http.StatusUnauthorized, "invalid_credentials")
			admin = s.loginAs(email, "first boot password")
			if n := countAdmins(); n != 1 {
				t.Fatalf("%d admins after a restart, want 1", n)
			}

			other := uniqueEmail("boot-other")
			s.setEnv("APP_BOOTSTRAP_ADMIN_EMAIL", other)
			s.restart()
			admin = s.loginAs(email, "first boot password")
			if n := countAdmins(); n != 1 {
				t.Fatalf("%d admins after a restart with another bootstrap email, want 1", n)
			}
			if n := len(s.directory(admin.Access, other, 0)); n != 0 {
				t.Fatal("the bootstrap settings created an account although an admin exists")
			}
		})
	}
}
