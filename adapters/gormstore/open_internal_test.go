package gormstore

import (
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"

	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/domain"
)

func TestMySQLDSN(t *testing.T) {
	cases := []struct {
		name  string
		in    string
		check func(t *testing.T, c *mysqldriver.Config)
	}{
		{"adds what is missing", "root@tcp(127.0.0.1:3306)/app", func(t *testing.T, c *mysqldriver.Config) {
			if c.Timeout != mysqlDialTimeout || c.ReadTimeout != mysqlReadTimeout || c.WriteTimeout != mysqlWriteTimeout {
				t.Errorf("timeouts = %s/%s/%s", c.Timeout, c.ReadTimeout, c.WriteTimeout)
			}
		}},
		{"keeps the operator's timeouts", "root@tcp(db:3306)/app?timeout=1s&readTimeout=30s&writeTimeout=40s", func(t *testing.T, c *mysqldriver.Config) {
			if c.Timeout != time.Second || c.ReadTimeout != 30*time.Second || c.WriteTimeout != 40*time.Second {
				t.Errorf("timeouts = %s/%s/%s", c.Timeout, c.ReadTimeout, c.WriteTimeout)
			}
		}},
		{"overrides settings the adapter relies on", "root@tcp(db:3306)/app?parseTime=false&loc=Local&clientFoundRows=false&interpolateParams=false", nil},
		{"keeps credentials and other parameters exactly", "us:er:p@ss/w?rd@tcp(db:3306)/app?tls=skip-verify&maxAllowedPacket=1048576", func(t *testing.T, c *mysqldriver.Config) {
			if c.User != "us" || c.Passwd != "er:p@ss/w?rd" || c.TLSConfig != "skip-verify" || c.MaxAllowedPacket != 1<<20 {
				t.Errorf("got user %q password %q tls %q packet %d", c.User, c.Passwd, c.TLSConfig, c.MaxAllowedPacket)
			}
		}},
		{"keeps the operator's collation", "root@tcp(db:3306)/app?collation=utf8mb4_unicode_ci", func(t *testing.T, c *mysqldriver.Config) {
			if c.Collation != "utf8mb4_unicode_ci" {
				t.Errorf("collation = %q", c.Collation)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := MySQLConfig(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			out := c.FormatDSN()
			if !c.ParseTime || c.Loc != time.UTC || !c.ClientFoundRows || !c.InterpolateParams {
				t.Errorf("parseTime=%v loc=%v clientFoundRows=%v interpolateParams=%v in %q",
					c.ParseTime, c.Loc, c.ClientFoundRows, c.InterpolateParams, out)
			}
			if !strings.Contains(out, "charset=utf8mb4") {
				t.Errorf("no utf8mb4 charset in %q", out)
			}
			if c.DBName != "app" {
				t.Errorf("database = %q", c.DBName)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
	if _, err := MySQLConfig("not a dsn"); err == nil || !strings.Contains(err.Error(), "APP_DATABASE_DSN") {
		t.Errorf("an invalid DSN: %v, want an error naming APP_DATABASE_DSN", err)
	}
}

// TestInvalidDSNsNameTheSetting checks that every DSN Open refuses is reported under the
// setting that holds it, with the driver's reason, and never with a MySQL DSN's password.
func TestInvalidDSNsNameTheSetting(t *testing.T) {
	const password = "Zq9x7KvQ3mJ8"
	dir := t.TempDir()
	for _, c := range []struct {
		name   string
		db     config.Database
		reason string
	}{
		{"mysql, not a DSN", config.Database{Driver: config.DriverMySQL, DSN: "not a dsn"}, "missing the slash"},
		{"mysql, bad parameter", config.Database{Driver: config.DriverMySQL, DSN: "app:" + password + "@tcp(db:3306)/app?parseTime=maybe"}, "invalid bool value: maybe"},
		{"mysql, unclosed address", config.Database{Driver: config.DriverMySQL, DSN: "app:" + password + "@tcp(db:3306/app"}, "invalid DSN"},
		{"mysql, unknown TLS config", config.Database{Driver: config.DriverMySQL, DSN: "app:" + password + "@tcp(db:3306)/app?tls=corp"}, "corp"},
		// The database name the driver quotes is here a piece of the password.
		{"mysql, password in the quoted part", config.Database{Driver: config.DriverMySQL, DSN: "app:x/%zz" + password + "@tcp(db:3306)"}, "not shown"},
		{"sqlite, bad parameters", config.Database{Driver: config.DriverSQLite, DSN: filepath.Join(dir, "a.db") + "?cache=%zz"}, "%zz"},
		{"sqlite, time format", config.Database{Driver: config.DriverSQLite, DSN: filepath.Join(dir, "b.db") + "?_time_format=sqlite"}, "_time_format"},
		{"sqlite, no path", config.Database{Driver: config.DriverSQLite, DSN: "?cache=shared"}, "file path"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := Open(c.db)
			if err == nil {
				t.Fatal("the DSN was accepted")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "APP_DATABASE_DSN: ") || !strings.Contains(msg, c.reason) {
				t.Errorf("error %q, want it to start with APP_DATABASE_DSN and give the reason %q", msg, c.reason)
			}
			for i := 0; i+4 <= len(password); i++ {
				if strings.Contains(msg, password[i:i+4]) {
					t.Fatalf("error %q shows part of the password (%q)", msg, password[i:i+4])
				}
			}
		})
	}
	if _, _, err := Open(config.Database{Driver: "postgres"}); err == nil || !strings.Contains(err.Error(), "APP_DATABASE_DRIVER") {
		t.Errorf("an unknown driver: %v, want an error naming APP_DATABASE_DRIVER", err)
	}
}

func TestSQLiteDSN(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "data")
	dsn, memory, err := sqliteDSN(filepath.Join(dir, "app.db") + "?_pragma=busy_timeout(100)&cache=shared")
	if err != nil {
		t.Fatal(err)
	}
	if memory {
		t.Error("a file database reported as in-memory")
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Errorf("the database directory was not created: %v", err)
	}
	path, rawQuery, _ := strings.Cut(dsn, "?")
	if path != filepath.Join(dir, "app.db") {
		t.Errorf("path = %q", path)
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		t.Fatal(err)
	}
	wantPragmas := []string{"journal_mode(WAL)", "busy_timeout(5000)", "foreign_keys(1)", "busy_timeout(100)"}
	if !slices.Equal(q["_pragma"], wantPragmas) {
		t.Errorf("pragmas = %v, want %v (the operator's last, so they win)", q["_pragma"], wantPragmas)
	}
	if q.Get("_txlock") != "immediate" || q.Get("cache") != "shared" {
		t.Errorf("query = %v", q)
	}

	if _, _, err := sqliteDSN(filepath.Join(dir, "x.db") + "?_time_format=sqlite"); err == nil {
		t.Error("_time_format was accepted")
	}
	if _, memory, err := sqliteDSN(":memory:"); err != nil || !memory {
		t.Errorf(":memory: gave memory=%v err=%v", memory, err)
	}
	if _, _, err := sqliteDSN(""); err == nil {
		t.Error("an empty path was accepted")
	}
}

// TestOpenFailureNamesTheSetting: a database that cannot be used at start-up stops it with a
// message for the operator: the setting, what was tried (never the password) and the
// driver's reason, not the clients' "temporarily unavailable". An unreachable server is still
// domain.ErrUnavailable to code that asks.
func TestOpenFailureNamesTheSetting(t *testing.T) {
	t.Run("mysql server not listening", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		_, _, err = Open(config.Database{Driver: config.DriverMySQL, DSN: "svc:s3cretPassw0rd@tcp(" + addr + ")/appdb", MaxOpenConns: 1})
		if err == nil {
			t.Fatal("Open succeeded against a closed port")
		}
		msg := err.Error()
		for _, want := range []string{"APP_DATABASE_DSN: cannot connect to", `"appdb"`, addr, `"svc"`, "connection refused"} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q does not say %q", msg, want)
			}
		}
		for _, leak := range []string{"s3cret", domain.ErrUnavailable.Error()} {
			if strings.Contains(msg, leak) {
				t.Errorf("message %q holds %q", msg, leak)
			}
		}
		if !errors.Is(err, domain.ErrUnavailable) {
			t.Errorf("an unreachable server is not domain.ErrUnavailable: %v", err)
		}
	})
	t.Run("sqlite file that is not a database", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "not.db")
		if err := os.WriteFile(file, []byte(strings.Repeat("not a database\n", 100)), 0o600); err != nil {
			t.Fatal(err)
		}
		db, cleanup, err := Open(config.Database{Driver: config.DriverSQLite, DSN: file})
		if err == nil {
			// The driver may open lazily; the first statement then fails instead.
			defer cleanup()
			err = db.Exec("SELECT 1").Error
			t.Fatalf("Open accepted a file that is not a database (first statement: %v)", err)
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "APP_DATABASE_DSN: cannot open the SQLite database \""+file+"\": ") {
			t.Errorf("message %q does not name the setting and the file", msg)
		}
	})
}
