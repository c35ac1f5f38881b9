package config_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/acme/postsvc/config"
)

// loadErr loads with env set (on top of isolate's clean slate) and returns the error's text,
// failing the test when loading succeeds.
func loadErr(t *testing.T, env map[string]string, file string, fs *pflag.FlagSet) string {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	_, err := config.Load(file, fs)
	if err == nil {
		t.Fatalf("env %v, file %q: loaded without error", env, file)
	}
	return err.Error()
}

// wantAll fails unless msg holds every part.
func wantAll(t *testing.T, msg string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("message lacks %q:\n%s", p, msg)
		}
	}
}

// TestUndecodableEnvironmentValuesAreNamed: a value of the wrong type in an APP_ variable
// stops loading with a message in the style of the other invalid settings: the variable and
// the key, where it was set, what was expected and the value. One line per setting.
func TestUndecodableEnvironmentValuesAreNamed(t *testing.T) {
	for _, c := range []struct {
		env, value string
		expect     []string
	}{
		// int
		{"APP_ECG_WORKERS", "two", []string{"must be a whole number"}},
		{"APP_DATABASE_MAX_OPEN_CONNS", "1.5", []string{"must be a whole number"}},
		{"APP_JOBS_WORKERS", "99999999999999999999", []string{"must be a whole number"}},
		// int64 byte sizes
		{"APP_ECG_MAX_BODY_BYTES", "abc", []string{"must be a whole number of bytes", "67108864"}},
		{"APP_MEDIA_MAX_FILE_BYTES", "20MiB", []string{"must be a whole number of bytes", "without a unit"}},
		{"APP_HTTP_BODY_MEMORY", "64 MiB", []string{"of bytes"}},
		// uint32 and uint8, whose range the decoder checks for strings
		{"APP_AUTH_ARGON2_ITERATIONS", "-1", []string{"from 0 to 4294967295"}},
		{"APP_AUTH_ARGON2_MEMORY_KIB", "19MiB", []string{"a whole number of KiB"}},
		{"APP_AUTH_ARGON2_PARALLELISM", "300", []string{"from 0 to 255"}},
		// durations
		{"APP_CACHE_POSTS_TTL", "xyz", []string{"must be a duration", "30s"}},
		{"APP_HTTP_READ_TIMEOUT", "60", []string{"must be a duration with a unit"}},
		{"APP_JOBS_LEASE", "30 s", []string{"must be a duration"}},
		// bools
		{"APP_DATABASE_MIGRATE_ON_START", "maybe", []string{"must be true or false"}},
		{"APP_STORAGE_S3_FORCE_PATH_STYLE", "yes please", []string{"must be true or false"}},
	} {
		t.Run(c.env, func(t *testing.T) {
			isolate(t)
			msg := loadErr(t, map[string]string{c.env: c.value}, "", nil)
			key := strings.ToLower(strings.Replace(strings.TrimPrefix(c.env, "APP_"), "_", ".", 1))
			if c.env == "APP_STORAGE_S3_FORCE_PATH_STYLE" {
				key = "storage.s3.force_path_style"
			}
			want := c.env + " (key " + key + ", set in the environment): must be "
			if !strings.HasPrefix(msg, want) {
				t.Errorf("message %q, want it to start with %q", msg, want)
			}
			wantAll(t, msg, append(c.expect, `got "`+c.value+`"`)...)
			if strings.Contains(msg, "\n") || strings.Contains(msg, "decoding failed") || strings.Contains(msg, "strconv") {
				t.Errorf("want one line in the setting's own words, got:\n%s", msg)
			}
		})
	}
}

// TestEveryBadSettingIsReportedAtOnce: all undecodable values are reported together, and with
// them the invalid values of other settings, so one start-up names everything to fix.
func TestEveryBadSettingIsReportedAtOnce(t *testing.T) {
	dir := isolate(t)
	msg := loadErr(t, map[string]string{
		"APP_ECG_MAX_BODY_BYTES":   "abc",
		"APP_CACHE_POSTS_TTL":      "xyz",
		"APP_MEDIA_MAX_FILE_BYTES": "abc",
		"APP_ECG_WORKERS":          "two",
		"APP_JOBS_WORKERS":         "0",
		"APP_ENV":                  "staging",
	}, "", nil)
	wantAll(t, msg, "APP_ECG_MAX_BODY_BYTES (", "APP_CACHE_POSTS_TTL (", "APP_MEDIA_MAX_FILE_BYTES (", "APP_ECG_WORKERS (",
		"APP_JOBS_WORKERS: must be greater than zero", "APP_ENV: must be")
	if n := strings.Count(msg, "\n") + 1; n != 6 {
		t.Errorf("%d lines, want one per bad setting (6):\n%s", n, msg)
	}
	if _, err := os.Stat(filepath.Join(dir, "jwt-secret")); !os.IsNotExist(err) {
		t.Error("a configuration that does not load must not leave a development secret behind")
	}
}

// TestUndecodableFileValuesAreNamed: values from the configuration file are reported with
// their key and the file, including what the decoder would otherwise take silently and
// wrongly (a bare number as nanoseconds, a number wrapped or truncated into its field).
func TestUndecodableFileValuesAreNamed(t *testing.T) {
	dir := isolate(t)
	file := filepath.Join(dir, "cfg.yaml")
	yaml := `cache:
  posts_ttl: 300
  posts_max_bytes: 64MiB
database:
  migrate_on_start: maybe
  max_open_conns: 2.5
auth:
  argon2_parallelism: 300
  argon2_iterations: -1
http:
  trusted_proxies: {a: 1}
  cors_origins: [https://a.example, https://b.example]
  addr: [":1", ":2"]
  shutdown_delay: 0
jobs:
  workers: 8
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	msg := loadErr(t, nil, file, nil)
	in := ", set in " + file + "): must be "
	for _, want := range []string{
		"APP_CACHE_POSTS_TTL (key cache.posts_ttl" + in + "a duration with a unit, such as 500ms, 30s, 5m or 1h30m, got 300",
		"APP_CACHE_POSTS_MAX_BYTES (key cache.posts_max_bytes" + in + "a whole number of bytes",
		`got "64MiB"`,
		"APP_DATABASE_MIGRATE_ON_START (key database.migrate_on_start" + in + `true or false, got "maybe"`,
		"APP_DATABASE_MAX_OPEN_CONNS (key database.max_open_conns" + in + "a whole number, got 2.5",
		"APP_AUTH_ARGON2_PARALLELISM (key auth.argon2_parallelism" + in + "a whole number from 0 to 255, got 300",
		"APP_AUTH_ARGON2_ITERATIONS (key auth.argon2_iterations" + in + "a whole number from 0 to 4294967295, got -1",
		"APP_HTTP_TRUSTED_PROXIES (key http.trusted_proxies" + in + "a list",
		"APP_HTTP_ADDR (key http.addr" + in + "a single value",
	} {
		wantAll(t, msg, want)
	}
	if n := strings.Count(msg, "\n") + 1; n != 8 {
		t.Errorf("%d lines, want 8 (one per bad setting; cors_origins, shutdown_delay: 0 and jobs.workers are fine):\n%s", n, msg)
	}
}

// TestUndecodableFlagValuesAreNamed: a value from a flag names the flag.
func TestUndecodableFlagValuesAreNamed(t *testing.T) {
	isolate(t)
	t.Setenv("APP_ECG_WORKERS", "3") // the flag wins over the environment, and is the one named
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.String("ecg-workers", "", "")
	config.BindFlag(fs, "ecg-workers", "ecg.workers")
	if err := fs.Parse([]string{"--ecg-workers=many"}); err != nil {
		t.Fatal(err)
	}
	msg := loadErr(t, nil, "", fs)
	wantAll(t, msg, `APP_ECG_WORKERS (key ecg.workers, set by flag --ecg-workers): must be a whole number, got "many"`)
}

// TestValuesThatDecodeAreKept: the check refuses nothing the decoder reads as meant.
func TestValuesThatDecodeAreKept(t *testing.T) {
	dir := isolate(t)
	file := filepath.Join(dir, "cfg.yaml")
	yaml := "http:\n  shutdown_delay: 0\n  cors_origins: [https://a.example]\nauth:\n  argon2_parallelism: 2\njobs:\n  workers: 8\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"APP_ECG_MAX_BODY_BYTES": "1048576", "APP_CACHE_POSTS_TTL": "1h30m", "APP_DATABASE_MIGRATE_ON_START": "false",
		"APP_HTTP_TRUSTED_PROXIES": "10.0.0.0/8,192.168.0.1", "APP_AUTH_ARGON2_ITERATIONS": "3",
	} {
		t.Setenv(k, v)
	}
	cfg, err := config.Load(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ECG.MaxBodyBytes != 1<<20 || cfg.Cache.PostsTTL != 90*time.Minute || cfg.Database.MigrateOnStart ||
		len(cfg.HTTP.TrustedProxies) != 2 || cfg.Auth.Argon2Iterations != 3 || cfg.Auth.Argon2Parallelism != 2 ||
		cfg.Jobs.Workers != 8 || cfg.HTTP.ShutdownDelay != 0 || len(cfg.HTTP.CORSOrigins) != 1 {
		t.Fatalf("values lost: %+v", cfg)
	}
}

// TestSecretsAreNeverShown: a secret setting that does not decode is named, never shown.
func TestSecretsAreNeverShown(t *testing.T) {
	const secret = "do-not-print-this-secret"
	for _, c := range []struct{ env, yaml string }{
		{"APP_AUTH_JWT_SECRET", "auth:\n  jwt_secret: [" + secret + "]\n"},
		{"APP_BOOTSTRAP_ADMIN_PASSWORD", "bootstrap:\n  admin_email: a@x.io\n  admin_password: {p: " + secret + "}\n"},
		{"APP_STORAGE_S3_SECRET_ACCESS_KEY", "storage:\n  s3:\n    secret_access_key: [" + secret + "]\n"},
		{"APP_DATABASE_DSN", "database:\n  dsn: [" + secret + "]\n"},
		{"APP_REDIS_URL", "redis:\n  url: [" + secret + "]\n"},
	} {
		t.Run(c.env, func(t *testing.T) {
			dir := isolate(t)
			file := filepath.Join(dir, "cfg.yaml")
			if err := os.WriteFile(file, []byte(c.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			msg := loadErr(t, nil, file, nil)
			wantAll(t, msg, c.env+" (key ")
			if strings.Contains(msg, secret) || strings.Contains(msg, "got ") {
				t.Errorf("the message shows the secret's value:\n%s", msg)
			}
		})
	}
	// Every setting that holds a secret is tagged so.
	secrets := map[string]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type)
			} else if f.Tag.Get("secret") == "true" {
				secrets[t.Name()+"."+f.Name] = true
			}
		}
	}
	walk(reflect.TypeFor[config.Config]())
	for _, name := range []string{"Auth.JWTSecret", "Bootstrap.AdminPassword", "S3.SecretAccessKey", "Database.DSN", "Redis.URL"} {
		if !secrets[name] {
			t.Errorf("%s is not tagged secret", name)
		}
	}
}

// TestInvalidMySQLDSNIsNamed: a DSN the MySQL driver refuses stops loading under
// APP_DATABASE_DSN, with the driver's reason and without the password.
func TestInvalidMySQLDSNIsNamed(t *testing.T) {
	const password = "Zq9x7KvQ3mJ8"
	for _, c := range []struct{ dsn, reason string }{
		{"not a dsn", "missing the slash separating the database name"},
		{"app:" + password + "@tcp(db:3306)/app?parseTime=maybe", "invalid bool value: maybe"},
		{"app:" + password + "@tcp(db:3306/app", "network address not terminated"},
		{"mysql://app:" + password + "@db:3306/app", "default addr for network"},
		// The part the driver quotes holds a piece of the password: the reason is left out.
		{"app:x/%zz" + password + "@tcp(db:3306)", "is not shown"},
	} {
		t.Run(c.dsn, func(t *testing.T) {
			isolate(t)
			msg := loadErr(t, map[string]string{"APP_DATABASE_DRIVER": "mysql", "APP_DATABASE_DSN": c.dsn}, "", nil)
			wantAll(t, msg, "APP_DATABASE_DSN: is not a valid MySQL DSN (expected user:password@tcp(host:3306)/dbname", c.reason)
			for i := 0; i+4 <= len(password); i++ {
				if strings.Contains(msg, password[i:i+4]) {
					t.Fatalf("the message shows part of the password (%q):\n%s", password[i:i+4], msg)
				}
			}
		})
	}
	isolate(t)
	t.Setenv("APP_DATABASE_DRIVER", "mysql")
	t.Setenv("APP_DATABASE_DSN", "app:"+password+"@tcp(127.0.0.1:3306)/app?parseTime=true")
	if _, err := config.Load("", nil); err != nil {
		t.Fatalf("a valid DSN was refused: %v", err)
	}
}

// TestInvalidSQLiteDSNIsNamed: SQLite DSN parameters that do not parse are named too.
func TestInvalidSQLiteDSNIsNamed(t *testing.T) {
	dir := isolate(t)
	msg := loadErr(t, map[string]string{"APP_DATABASE_DSN": filepath.Join(dir, "x.db") + "?cache=%zz"}, "", nil)
	wantAll(t, msg, "APP_DATABASE_DSN: must be a SQLite file path", `invalid URL escape "%zz"`)
}

// TestSectionsGivenAValueAreNamed: a section given a value of its own would hide all its
// settings, defaults included, and have each fail for no fault of its own; the section is
// named instead, alone.
func TestSectionsGivenAValueAreNamed(t *testing.T) {
	isolate(t)
	msg := loadErr(t, map[string]string{"APP_REDIS": "redis://:hunter2@cache:6379/0"}, "", nil)
	wantAll(t, msg, "APP_REDIS: is no setting but names the section redis")
	if strings.Contains(msg, "hunter2") || strings.Contains(msg, "\n") {
		t.Errorf("want one line without the value:\n%s", msg)
	}

	dir := isolate(t)
	file := filepath.Join(dir, "cfg.yaml")
	if err := os.WriteFile(file, []byte("http: 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	msg = loadErr(t, nil, file, nil)
	wantAll(t, msg, "APP_HTTP_* (section http, set in "+file+"): must be a section of settings such as http.addr")
	if strings.Contains(msg, "decoding failed") || strings.Contains(msg, "\n") {
		t.Errorf("want one line naming the section:\n%s", msg)
	}
}
