package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"
	"github.com/testcontainers/testcontainers-go"
	tcmysql "github.com/testcontainers/testcontainers-go/modules/mysql"
	"gorm.io/gorm"

	"github.com/acme/postsvc/config"
)

// EnvMySQLDSN names the environment variable with the DSN of a MySQL or MariaDB server that
// tests may create and drop databases on.
const EnvMySQLDSN = "TEST_MYSQL_DSN"

// mysqlImage is pinned so a new upstream release cannot change what the tests run against
// between two runs of the same commit.
const mysqlImage = "mysql:8.4"

// mysqlServer is the server shared by every MySQL test of one test binary. Each test gets its
// own database on it, which is enough isolation and far cheaper than a server per test.
type mysqlServer struct {
	adminDSN  string
	admin     *sql.DB
	container *tcmysql.MySQLContainer
	// unavailable, when not empty, says why no server can be had (no DSN and no Docker).
	unavailable string
	// err is a failure to reach a server that should have been there.
	err error
}

var (
	serverOnce sync.Once
	server     *mysqlServer
)

// MySQL returns a migrated, empty database of its own on the shared MySQL server, dropped when
// the test ends. Without a server it skips the test, or fails it when CI=true.
func MySQL(t testing.TB) *gorm.DB {
	t.Helper()
	dsn := MySQLDSN(t)
	// The pool's cleanup is registered after the database's, so it runs before the DROP.
	return open(t, config.Database{
		Driver: config.DriverMySQL, DSN: dsn,
		MaxOpenConns: 10, MaxIdleConns: 10, ConnMaxLifetime: time.Minute,
	})
}

// MySQLDSN creates an empty database of its own on the shared MySQL server, without migrating
// it, and returns its DSN; the database is dropped when the test ends. It is for tests that
// hand the DSN to something that migrates by itself, such as the server binary. Without a
// server it skips the test, or fails it when CI=true.
func MySQLDSN(t testing.TB) string {
	t.Helper()
	serverOnce.Do(func() { server = startServer() })
	switch {
	case server.err != nil:
		t.Fatalf("testdb: MySQL server: %v", server.err)
	case server.unavailable != "" && os.Getenv("CI") == "true":
		t.Fatalf("testdb: the MySQL suite cannot run in CI: %s; set %s or provide a Docker engine", server.unavailable, EnvMySQLDSN)
	case server.unavailable != "":
		t.Skipf("testdb: skipping MySQL: %s; set %s (e.g. %s='root@tcp(127.0.0.1:3306)/test') or start Docker to run it",
			server.unavailable, EnvMySQLDSN, EnvMySQLDSN)
	}

	name := "postsvc_test_" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	if _, err := server.admin.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		t.Fatalf("testdb: create database: %v", err)
	}
	// Registered right after the database exists, so no failure below can leak it.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := server.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			t.Errorf("testdb: drop database %s: %v", name, err)
		}
	})
	dsn, err := withDatabase(server.adminDSN, name)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	return dsn
}

// startServer finds the MySQL server for this test binary.
func startServer() *mysqlServer {
	if dsn := os.Getenv(EnvMySQLDSN); dsn != "" {
		// A server that was asked for by name must work: its failure is an error, not a skip.
		return connectAdmin(&mysqlServer{}, dsn)
	}
	if reason := DockerUnavailable(); reason != "" {
		return &mysqlServer{unavailable: "no " + EnvMySQLDSN + " and " + reason}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ctr, err := tcmysql.Run(ctx, mysqlImage,
		tcmysql.WithUsername("root"),
		tcmysql.WithPassword("test"),
		tcmysql.WithDatabase("test"),
	)
	s := &mysqlServer{container: ctr}
	if err != nil {
		s.err = fmt.Errorf("start %s container: %w", mysqlImage, err)
		return s
	}
	dsn, err := ctr.ConnectionString(ctx)
	if err != nil {
		s.err = fmt.Errorf("container address: %w", err)
		return s
	}
	return connectAdmin(s, dsn)
}

// connectAdmin opens the connection used to create and drop the per-test databases.
func connectAdmin(s *mysqlServer, dsn string) *mysqlServer {
	s.adminDSN = dsn
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		s.err = fmt.Errorf("invalid %s: %w", EnvMySQLDSN, err)
		return s
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		s.err = fmt.Errorf("connect: %w", err)
		return s
	}
	s.admin = db
	return s
}

// DockerUnavailable says why no Docker engine can be used, or returns "" when one answers. The
// other suites that start containers (test/testredis) ask it too.
func DockerUnavailable() (reason string) {
	// testcontainers panics instead of returning an error in some set-ups without Docker.
	defer func() {
		if r := recover(); r != nil {
			reason = fmt.Sprintf("no Docker engine (%v)", r)
		}
	}()
	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		return fmt.Sprintf("no Docker engine (%v)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Health closes the provider itself.
	if err := provider.Health(ctx); err != nil {
		return fmt.Sprintf("no Docker engine (%v)", err)
	}
	return ""
}

// Main runs the tests of a package and then stops the MySQL container if this binary started
// one. Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }
//
// A binary that does not call it still leaves nothing behind: testcontainers' reaper removes
// the container when the test process exits. Calling it only makes that immediate.
func Main(m *testing.M) int {
	code := m.Run()
	Shutdown()
	return code
}

// Shutdown closes the admin connection and terminates the container started by this binary.
func Shutdown() {
	if server == nil {
		return
	}
	if server.admin != nil {
		_ = server.admin.Close()
	}
	if server.container != nil {
		if err := testcontainers.TerminateContainer(server.container); err != nil {
			fmt.Fprintf(os.Stderr, "testdb: terminate MySQL container: %v\n", err)
		}
	}
}

// withDatabase returns dsn pointing at database name, everything else unchanged.
func withDatabase(dsn, name string) (string, error) {
	cfg, err := mysqldriver.ParseDSN(dsn)
	if err != nil {
		return "", fmt.Errorf("invalid %s: %w", EnvMySQLDSN, err)
	}
	cfg.DBName = name
	return cfg.FormatDSN(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
