package testdb_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/acme/postsvc/test/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// TestForEachGivesMigratedDatabases checks that every backend's database comes migrated and
// isolated: a row written in one is not seen by the next.
func TestForEachGivesMigratedDatabases(t *testing.T) {
	for range 2 {
		testdb.ForEach(t, func(t *testing.T, db *gorm.DB) {
			var n int64
			if err := db.Table("users").Count(&n).Error; err != nil {
				t.Fatalf("the users table is missing: %v", err)
			}
			if n != 0 {
				t.Fatalf("a fresh database holds %d users", n)
			}
			err := db.Exec(`INSERT INTO users (id, email, password_hash, name, name_lower, role, created_at, updated_at)
				VALUES ('id-1', 'a@x.io', 'hash', '', '', 'user', ?, ?)`, "2024-01-01 00:00:00", "2024-01-01 00:00:00").Error
			if err != nil {
				t.Fatalf("insert: %v", err)
			}
		})
	}
}

// TestMySQLWithoutServer runs this test binary again with no MySQL server and no Docker engine,
// and checks that MySQL tests are skipped on a developer machine but fail in CI.
func TestMySQLWithoutServer(t *testing.T) {
	if os.Getenv("TESTDB_CHILD") == "1" {
		testdb.MySQL(t)
		t.Log("reached past MySQL(t)")
		return
	}
	for _, c := range []struct {
		ci   string
		want string
	}{
		{"", "--- SKIP: TestMySQLWithoutServer"},
		{"true", "--- FAIL: TestMySQLWithoutServer"},
	} {
		t.Run("CI="+c.ci, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestMySQLWithoutServer$", "-test.v")
			cmd.Env = append(os.Environ(),
				"TESTDB_CHILD=1", "CI="+c.ci, testdb.EnvMySQLDSN+"=",
				// A Docker endpoint that cannot exist, whatever this machine has.
				"DOCKER_HOST=unix:///nonexistent/docker.sock", "TESTCONTAINERS_HOST_OVERRIDE=",
			)
			out, _ := cmd.CombinedOutput()
			if !strings.Contains(string(out), c.want) || strings.Contains(string(out), "reached past MySQL(t)") {
				t.Fatalf("CI=%q: want %q in:\n%s", c.ci, c.want, out)
			}
			if c.ci == "true" && !strings.Contains(string(out), "cannot run in CI") {
				t.Fatalf("the CI failure does not say why:\n%s", out)
			}
			if c.ci == "" && !strings.Contains(string(out), testdb.EnvMySQLDSN) {
				t.Fatalf("the skip does not say how to enable the suite:\n%s", out)
			}
		})
	}
}
