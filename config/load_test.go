package config_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/acme/postsvc/config"
)

// isolate points the data folder at a temporary directory and clears APP_ variables that the
// developer's shell might set.
func isolate(t *testing.T) string {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "APP_") {
			t.Setenv(k, "")
			_ = os.Unsetenv(k)
		}
	}
	dir := t.TempDir()
	t.Setenv("APP_DATA_DIR", dir)
	return dir
}

func TestDefaults(t *testing.T) {
	dir := isolate(t)
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Env != "development" || cfg.HTTP.Addr != ":8080" || cfg.Database.Driver != "sqlite" ||
		cfg.Cache.PostsTTL != 5*time.Minute || cfg.Auth.AccessTokenTTL != 15*time.Minute || cfg.Cache.PostsMaxBytes != 64<<20 {
		t.Fatalf("defaults: %+v", cfg)
	}
	if cfg.Throttle.SignupAttempts != 20 {
		t.Fatalf("signups per address per window: %d, want 20 (the contract's default)", cfg.Throttle.SignupAttempts)
	}
	if cfg.Auth.MaxQueuedHashes != 16 || cfg.Auth.MaxQueuedPerClient != 4 || cfg.Auth.MaxHashesPerClient != 0 {
		t.Fatalf("hashing queue bounds %d and %d per client, share %d; want 16, 4 and 0 (half the slots)",
			cfg.Auth.MaxQueuedHashes, cfg.Auth.MaxQueuedPerClient, cfg.Auth.MaxHashesPerClient)
	}
	if j := cfg.Jobs; j.Workers != 4 || j.Lease != 30*time.Second || j.PollInterval != time.Second ||
		j.ShutdownGrace != 20*time.Second || j.FailedRetention != 7*24*time.Hour {
		t.Fatalf("job settings %+v, want 4 workers, 30s lease, 1s poll, 20s grace, 7 days of failed jobs", j)
	}
	if m := cfg.Media; m.MaxFileBytes != 20<<20 || m.QuotaBytes != 1<<30 || m.MaxFiles != 50 || m.MaxRequestBytes != 200<<20 {
		t.Fatalf("media settings %+v, want the contract's 20 MiB a file, 1 GiB a user, 50 files and 200 MiB a request", m)
	}
	if cfg.HTTP.MaxConnections != 10000 {
		t.Fatalf("HTTP.MaxConnections %d, want 10000", cfg.HTTP.MaxConnections)
	}
	if cfg.Posts.QuotaBytes != 1<<30 {
		t.Fatalf("posts quota %d, want 1 GiB a user", cfg.Posts.QuotaBytes)
	}
	if cfg.ECG.QuotaBytes != 1<<30 {
		t.Fatalf("ECG quota %d, want 1 GiB a user", cfg.ECG.QuotaBytes)
	}
	if cfg.Database.DSN != filepath.Join(dir, "postsvc.db") {
		t.Fatalf("default DSN %q", cfg.Database.DSN)
	}
	if len(cfg.Auth.JWTSecret) < config.MinSecretBytes {
		t.Fatal("development must generate a secret")
	}
	again, err := config.Load("", nil)
	if err != nil || again.Auth.JWTSecret != cfg.Auth.JWTSecret {
		t.Fatal("the development secret must be kept in the data folder and reused")
	}
	info, err := os.Stat(filepath.Join(dir, "jwt-secret"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v %v", info, err)
	}
}

func TestPrecedenceFileEnvFlag(t *testing.T) {
	dir := isolate(t)
	file := filepath.Join(dir, "cfg.yaml")
	yaml := "http:\n  addr: \":7000\"\ncache:\n  posts_ttl: 2m\ndatabase:\n  max_open_conns: 3\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("APP_CACHE_POSTS_TTL", "90s")
	t.Setenv("APP_HTTP_ADDR", ":7001")
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.String("http-addr", "", "")
	config.BindFlag(fs, "http-addr", "http.addr")
	if err := fs.Parse([]string{"--http-addr=:7002"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file, fs)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Database.MaxOpenConns != 3 {
		t.Errorf("file value lost: %d", cfg.Database.MaxOpenConns)
	}
	if cfg.Cache.PostsTTL != 90*time.Second {
		t.Errorf("env must beat file: %v", cfg.Cache.PostsTTL)
	}
	if cfg.HTTP.Addr != ":7002" {
		t.Errorf("flag must beat env: %v", cfg.HTTP.Addr)
	}
}

func TestInvalidSettingsAreNamed(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"APP_ENV": "staging"}, "APP_ENV"},
		{map[string]string{"APP_DATABASE_DRIVER": "postgres"}, "APP_DATABASE_DRIVER"},
		{map[string]string{"APP_DATABASE_DRIVER": "mysql"}, "APP_DATABASE_DSN"},
		{map[string]string{"APP_CACHE_POSTS_TTL": "soon"}, "posts_ttl"},
		{map[string]string{"APP_CACHE_POSTS_TTL": "-1s"}, "APP_CACHE_POSTS_TTL"},
		{map[string]string{"APP_ENV": "production"}, "APP_AUTH_JWT_SECRET"},
		{map[string]string{"APP_ENV": "production", "APP_AUTH_JWT_SECRET": "short"}, "APP_AUTH_JWT_SECRET"},
		{map[string]string{"APP_BOOTSTRAP_ADMIN_EMAIL": "a@x.io"}, "APP_BOOTSTRAP_ADMIN_PASSWORD"},
		{map[string]string{"APP_HTTP_PPROF_ADDR": ":6060"}, "APP_HTTP_PPROF_ADDR"},
		{map[string]string{"APP_HTTP_PPROF_ADDR": "0.0.0.0:6060"}, "APP_HTTP_PPROF_ADDR"},
		{map[string]string{"APP_HTTP_PPROF_ADDR": "127.0.0.1"}, "APP_HTTP_PPROF_ADDR"},
		{map[string]string{"APP_HTTP_OPS_ADDR": "9090"}, "APP_HTTP_OPS_ADDR"},
		{map[string]string{"APP_HTTP_OPS_ADDR": "10.0.0.1"}, "APP_HTTP_OPS_ADDR"},
		{map[string]string{"APP_HTTP_OPS_ADDR": ":8080"}, "APP_HTTP_OPS_ADDR"},
		{map[string]string{"APP_HTTP_ADDR": "127.0.0.1:7000", "APP_HTTP_OPS_ADDR": "0.0.0.0:7000"}, "APP_HTTP_OPS_ADDR"},
		{map[string]string{"APP_THROTTLE_SIGNUP_ATTEMPTS": "0"}, "APP_THROTTLE_SIGNUP_ATTEMPTS"},
		{map[string]string{"APP_AUTH_MAX_QUEUED_HASHES": "0"}, "APP_AUTH_MAX_QUEUED_HASHES"},
		{map[string]string{"APP_AUTH_MAX_QUEUED_PER_CLIENT": "-1"}, "APP_AUTH_MAX_QUEUED_PER_CLIENT"},
		{map[string]string{"APP_AUTH_MAX_HASHES_PER_CLIENT": "-1"}, "APP_AUTH_MAX_HASHES_PER_CLIENT"},
		{map[string]string{"APP_AUTH_KEY_FLUSH_INTERVAL": "0s"}, "APP_AUTH_KEY_FLUSH_INTERVAL"},
		{map[string]string{"APP_AUTH_KEY_FLUSH_INTERVAL": "61s"}, "APP_AUTH_KEY_FLUSH_INTERVAL"},
	}
	cases = append(cases, []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"APP_JOBS_WORKERS": "0"}, "APP_JOBS_WORKERS"},
		{map[string]string{"APP_JOBS_LEASE": "0s"}, "APP_JOBS_LEASE"},
		{map[string]string{"APP_JOBS_LEASE": "500ms"}, "APP_JOBS_LEASE"},
		{map[string]string{"APP_JOBS_POLL_INTERVAL": "-1s"}, "APP_JOBS_POLL_INTERVAL"},
		{map[string]string{"APP_JOBS_SHUTDOWN_GRACE": "0s"}, "APP_JOBS_SHUTDOWN_GRACE"},
		{map[string]string{"APP_JOBS_FAILED_RETENTION": "0s"}, "APP_JOBS_FAILED_RETENTION"},
		{map[string]string{"APP_MEDIA_MAX_FILE_BYTES": "0"}, "APP_MEDIA_MAX_FILE_BYTES"},
		{map[string]string{"APP_MEDIA_QUOTA_BYTES": "-5"}, "APP_MEDIA_QUOTA_BYTES"},
		{map[string]string{"APP_ECG_QUOTA_BYTES": "0"}, "APP_ECG_QUOTA_BYTES"},
		{map[string]string{"APP_ECG_QUOTA_BYTES": "-5"}, "APP_ECG_QUOTA_BYTES"},
		{map[string]string{"APP_MEDIA_SWEEP_GRACE": "0s"}, "APP_MEDIA_SWEEP_GRACE"},
		{map[string]string{"APP_HTTP_TRUSTED_PROXIES": "bogus"}, "APP_HTTP_TRUSTED_PROXIES"},
		{map[string]string{"APP_HTTP_TRUSTED_PROXIES": "10.0.0.0/33"}, "APP_HTTP_TRUSTED_PROXIES"},
		{map[string]string{"APP_HTTP_CORS_ORIGINS": "https://app.example/"}, "APP_HTTP_CORS_ORIGINS"},
		{map[string]string{"APP_HTTP_CORS_ORIGINS": "app.example"}, "APP_HTTP_CORS_ORIGINS"},
		{map[string]string{"APP_HTTP_CORS_ORIGINS": "ftp://app.example"}, "APP_HTTP_CORS_ORIGINS"},
		{map[string]string{"APP_HTTP_CORS_ORIGINS": "https://app.example?x=1"}, "APP_HTTP_CORS_ORIGINS"},
	}...)
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			isolate(t)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			_, err := config.Load("", nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("env %v: error %v, want it to name %s", c.env, err, c.want)
			}
		})
	}
}

// TestListSettingsTrimTheirItems: a space after a comma, or a trailing comma, in a list
// setting is what people write. Before, "127.0.0.1, 10.0.0.0/8" stopped the router at start
// ("invalid CIDR address:  10.0.0.0/8") after the other settings had been checked, and a
// CORS origin after ", " silently never matched (its preflight got 405). Origins are kept as
// browsers send them, in lower case.
func TestListSettingsTrimTheirItems(t *testing.T) {
	isolate(t)
	t.Setenv("APP_HTTP_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8 ,")
	t.Setenv("APP_HTTP_CORS_ORIGINS", " https://App.Example, http://localhost:3000 ,")
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.HTTP.TrustedProxies, []string{"127.0.0.1", "10.0.0.0/8"}; !slices.Equal(got, want) {
		t.Errorf("trusted proxies %q, want %q", got, want)
	}
	if got, want := cfg.HTTP.CORSOrigins, []string{"https://app.example", "http://localhost:3000"}; !slices.Equal(got, want) {
		t.Errorf("CORS origins %q, want %q", got, want)
	}
}

// TestListSettingsNameEveryBadItemWithTheOthers: a bad proxy or origin is reported at start
// with every other bad setting, not alone and later by the router.
func TestListSettingsNameEveryBadItemWithTheOthers(t *testing.T) {
	isolate(t)
	t.Setenv("APP_HTTP_TRUSTED_PROXIES", "bogus")
	t.Setenv("APP_HTTP_CORS_ORIGINS", "https://ok.example,https://bad.example/path")
	t.Setenv("APP_MEDIA_WORKERS", "0")
	_, err := config.Load("", nil)
	for _, want := range []string{"APP_HTTP_TRUSTED_PROXIES", `"bogus"`, "APP_HTTP_CORS_ORIGINS", `"https://bad.example/path"`, "APP_MEDIA_WORKERS"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to name %s", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "ok.example") {
		t.Errorf("error %v names a good origin", err)
	}
}

func TestProductionAcceptsALongSecretAndWritesNoFile(t *testing.T) {
	dir := isolate(t)
	t.Setenv("APP_ENV", "production")
	t.Setenv("APP_AUTH_JWT_SECRET", strings.Repeat("s", 32))
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Log.Format != "json" {
		t.Errorf("production logs default to json, got %s", cfg.Log.Format)
	}
	if _, err := os.Stat(filepath.Join(dir, "jwt-secret")); !os.IsNotExist(err) {
		t.Error("production must not generate a secret file")
	}
}

func TestProfilerListensOnLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:6060", "[::1]:6060", "localhost:0"} {
		isolate(t)
		t.Setenv("APP_HTTP_PPROF_ADDR", addr)
		cfg, err := config.Load("", nil)
		if err != nil || cfg.HTTP.PprofAddr != addr {
			t.Errorf("%s: %v, %+v", addr, err, cfg)
		}
	}
}

// TestOperationsListenerAddress accepts any host with a port other than the API's: unlike the
// profiler's, the operations listener is scraped from other hosts, so loopback is not required.
func TestOperationsListenerAddress(t *testing.T) {
	isolate(t)
	cfg, err := config.Load("", nil)
	if err != nil || cfg.HTTP.OpsAddr != "" {
		t.Fatalf("the operations listener must be off by default: %q, %v", cfg.HTTP.OpsAddr, err)
	}
	for _, c := range []struct{ api, ops string }{
		{":8080", ":9090"},
		{":8080", "0.0.0.0:9090"},
		{":8080", "10.1.2.3:9090"},
		{":8080", "[::1]:9090"},
		{"127.0.0.1:8080", "10.1.2.3:8080"},
		{":8080", "127.0.0.1:0"},
	} {
		isolate(t)
		t.Setenv("APP_HTTP_ADDR", c.api)
		t.Setenv("APP_HTTP_OPS_ADDR", c.ops)
		cfg, err := config.Load("", nil)
		if err != nil || cfg.HTTP.OpsAddr != c.ops {
			t.Errorf("API %s, operations %s: %v", c.api, c.ops, err)
		}
	}
}

func TestEnvName(t *testing.T) {
	if got := config.EnvName("cache.posts_ttl"); got != "APP_CACHE_POSTS_TTL" {
		t.Fatal(got)
	}
}

func TestStorageDefaultsToTheFilesystemUnderTheDataFolder(t *testing.T) {
	dir := isolate(t)
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Storage; s.Driver != config.StorageFilesystem || s.Dir != filepath.Join(dir, "media") || s.S3.SSE != config.SSEAES256 {
		t.Fatalf("storage defaults %+v, want the filesystem under %s/media and AES256 for S3", s, dir)
	}
	// The S3 settings are not checked while the filesystem is used.
	t.Setenv("APP_STORAGE_S3_SSE", "bogus")
	if _, err := config.Load("", nil); err != nil {
		t.Fatalf("S3 settings must not matter with the filesystem driver: %v", err)
	}
}

func TestStorageS3Settings(t *testing.T) {
	for _, c := range []struct{ sse, want string }{
		{"", config.SSEAES256}, {"AES256", config.SSEAES256}, {"aes256", config.SSEAES256},
		{"aws:kms", config.SSEKMS}, {"none", config.SSENone}, {"NONE", config.SSENone},
	} {
		isolate(t)
		for k, v := range map[string]string{
			"APP_STORAGE_DRIVER": "S3", "APP_STORAGE_S3_BUCKET": "media", "APP_STORAGE_S3_ENDPOINT": "http://127.0.0.1:7070",
			"APP_STORAGE_S3_REGION": "eu-west-3", "APP_STORAGE_S3_ACCESS_KEY_ID": "AKID", "APP_STORAGE_S3_SECRET_ACCESS_KEY": "sekret",
			"APP_STORAGE_S3_FORCE_PATH_STYLE": "true", "APP_STORAGE_S3_SSE": c.sse,
		} {
			t.Setenv(k, v)
		}
		cfg, err := config.Load("", nil)
		if err != nil {
			t.Fatalf("sse %q: %v", c.sse, err)
		}
		want := config.S3{Bucket: "media", Endpoint: "http://127.0.0.1:7070", Region: "eu-west-3", AccessKeyID: "AKID",
			SecretAccessKey: "sekret", ForcePathStyle: true, SSE: c.want}
		if cfg.Storage.Driver != config.StorageS3 || cfg.Storage.S3 != want {
			t.Fatalf("sse %q: %+v, want driver s3 and %+v", c.sse, cfg.Storage, want)
		}
	}
}

func TestInvalidStorageSettingsAreNamed(t *testing.T) {
	const secret = "do-not-print-this-secret"
	s3 := func(kv ...string) map[string]string {
		env := map[string]string{"APP_STORAGE_DRIVER": "s3", "APP_STORAGE_S3_BUCKET": "media",
			"APP_STORAGE_S3_ACCESS_KEY_ID": "AKID", "APP_STORAGE_S3_SECRET_ACCESS_KEY": secret}
		for i := 0; i < len(kv); i += 2 {
			env[kv[i]] = kv[i+1]
		}
		return env
	}
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"APP_STORAGE_DRIVER": "gcs"}, "APP_STORAGE_DRIVER"},
		{map[string]string{"APP_STORAGE_DRIVER": "s3"}, "APP_STORAGE_S3_BUCKET"},
		{s3("APP_STORAGE_S3_BUCKET", " "), "APP_STORAGE_S3_BUCKET"},
		{s3("APP_STORAGE_S3_SSE", "DES"), "APP_STORAGE_S3_SSE"},
		{s3("APP_STORAGE_S3_SSE", "aws:kms:dsse"), "APP_STORAGE_S3_SSE"},
		{s3("APP_STORAGE_S3_ACCESS_KEY_ID", ""), "APP_STORAGE_S3_ACCESS_KEY_ID"},
		{s3("APP_STORAGE_S3_ENDPOINT", "127.0.0.1:7070"), "APP_STORAGE_S3_ENDPOINT"},
		{s3("APP_STORAGE_S3_ENDPOINT", "ftp://host"), "APP_STORAGE_S3_ENDPOINT"},
		{s3("APP_STORAGE_S3_FORCE_PATH_STYLE", "maybe"), "force_path_style"},
	} {
		t.Run(c.want, func(t *testing.T) {
			isolate(t)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			_, err := config.Load("", nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("env %v: error %v, want it to name %s", c.env, err, c.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("the error shows the secret key: %v", err)
			}
		})
	}
}
