package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// EnvPrefix is the prefix of every environment variable the service reads.
const EnvPrefix = "APP"

// Defaults lists every key with its default. It is the one list of settings: Load registers
// each key from it (so viper binds its environment variable), the README's table follows it,
// and the deployment tests check manifests against it.
func Defaults() map[string]any {
	return map[string]any{
		"env":                        EnvDevelopment,
		"data_dir":                   "./data",
		"http.addr":                  ":8080",
		"http.read_header_timeout":   "5s",
		"http.read_timeout":          "60s",
		"http.write_timeout":         "60s",
		"http.idle_timeout":          "120s",
		"http.max_connections":       10000,
		"http.shutdown_delay":        "0s",
		"http.shutdown_grace":        "20s",
		"http.request_timeout":       "5s",
		"http.body_memory":           64 << 20,
		"http.trusted_proxies":       []string{},
		"http.cors_origins":          []string{},
		"http.pprof_addr":            "",
		"http.ops_addr":              "",
		"database.driver":            DriverSQLite,
		"database.dsn":               "",
		"database.max_open_conns":    20,
		"database.max_idle_conns":    20,
		"database.conn_max_lifetime": "30m",
		"database.migrate_on_start":  true,
		"auth.jwt_secret":            "",
		"auth.jwt_issuer":            "postsvc",
		"auth.jwt_audience":          "postsvc-api",
		"auth.access_token_ttl":      "15m",
		"auth.refresh_token_ttl":     "720h",
		"auth.key_flush_interval":    "30s",
		"auth.max_concurrent_hashes": 4,
		"auth.max_queued_hashes":     16,
		"auth.max_queued_per_client": 4,
		"auth.max_hashes_per_client": 0,
		"auth.argon2_memory_kib":     19456,
		"auth.argon2_iterations":     2,
		"auth.argon2_parallelism":    1,
		"cache.posts_ttl":            "5m",
		"cache.posts_max_bytes":      64 << 20,
		"throttle.window":            "15m",
		"throttle.account_failures":  10,
		"throttle.addr_failures":     50,
		"throttle.signup_attempts":   20,
		"log.level":                  "info",
		"log.format":                 "",
		"bootstrap.admin_email":      "",
		"bootstrap.admin_password":   "",
		"jobs.workers":               4,
		"jobs.lease":                 "30s",
		"jobs.poll_interval":         "1s",
		"jobs.shutdown_grace":        "20s",
		"jobs.failed_retention":      "168h",
		"posts.quota_bytes":          1 << 30,
		"ecg.max_body_bytes":         64 << 20,
		"ecg.workers":                0,
		"ecg.spool_memory":           32 << 20,
		"ecg.spool_dir":              "",
		"ecg.spool_disk":             2 << 30,
		"ecg.quota_bytes":            1 << 30,
		"ecg.store_time_per_mib":     "250ms",
		"media.max_file_bytes":       20 << 20,
		"media.quota_bytes":          1 << 30,
		"media.max_files":            50,
		"media.max_request_bytes":    200 << 20,
		"media.upload_timeout":       "10m",
		"media.sweep_interval":       "1h",
		"media.sweep_grace":          "1h",
		"media.workers":              2,

		// Shared state between instances (config/redis.go).
		"redis.url":     "",
		"redis.prefix":  "postsvc:",
		"redis.timeout": "500ms",
		// Object storage (config/storage.go).
		"storage.driver":               StorageFilesystem,
		"storage.s3.bucket":            "",
		"storage.s3.endpoint":          "",
		"storage.s3.region":            "",
		"storage.s3.access_key_id":     "",
		"storage.s3.secret_access_key": "",
		"storage.s3.force_path_style":  false,
		"storage.s3.sse":               SSEAES256,
	}
}

// EnvName returns the environment variable that sets key.
func EnvName(key string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// Load builds the configuration from defaults, the optional file (YAML, TOML or JSON),
// APP_* variables and the flags in fs that carry a "viper-key" annotation, then validates it
// and fills the derived values (default SQLite path, development JWT secret).
func Load(file string, fs *pflag.FlagSet) (*Config, error) {
	v := viper.New()
	for key, value := range Defaults() {
		v.SetDefault(key, value)
	}
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	if file != "" {
		v.SetConfigFile(file)
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("config file %s: %w", file, err)
		}
	}
	if fs != nil {
		var bindErr error
		fs.VisitAll(func(f *pflag.Flag) {
			if keys := f.Annotations[FlagKeyAnnotation]; len(keys) == 1 && bindErr == nil {
				bindErr = v.BindPFlag(keys[0], f)
			}
		})
		if bindErr != nil {
			return nil, bindErr
		}
	}
	// Each setting is decoded on its own first, so that a value of the wrong type is reported
	// like any other invalid setting (named, with what was expected), all of them at once.
	// The bad ones then take their defaults, so the rest is still decoded and validated and
	// one start-up reports every problem.
	bad, decodeErrs, fatal := checkDecoding(v, file, fs)
	if file != "" {
		decodeErrs = append(decodeErrs, unknownFileKeys(file)...)
	}
	if fatal {
		return nil, errors.Join(decodeErrs...)
	}
	defaults := Defaults()
	for _, key := range bad {
		v.Set(key, defaults[key])
	}
	var cfg Config
	if err := v.Unmarshal(&cfg); err != nil {
		return nil, errors.Join(append(decodeErrs, fmt.Errorf("config: %w", err))...)
	}
	if err := cfg.finish(decodeErrs); err != nil {
		return nil, err
	}
	cfg.Warnings = nearMissEnv()
	return &cfg, nil
}

// FlagKeyAnnotation marks a flag with the viper key it sets.
const FlagKeyAnnotation = "viper-key"

// BindFlag declares that flag name sets key.
func BindFlag(fs *pflag.FlagSet, name, key string) {
	_ = fs.SetAnnotation(name, FlagKeyAnnotation, []string{key})
}

// MinSecretBytes is the shortest JWT secret accepted in production.
const MinSecretBytes = 32

// finish validates the settings and fills derived values. Every message names the setting
// by its environment variable, which is how operators set it. prior are the errors found
// before (values that do not decode); they come first, and with any error nothing is derived
// that outlives the call (the development secret file).
func (c *Config) finish(prior []error) error {
	errs := append([]error(nil), prior...)
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", EnvName(key), fmt.Sprintf(format, args...)))
	}
	c.Env = strings.ToLower(strings.TrimSpace(c.Env))
	if c.Env != EnvDevelopment && c.Env != EnvProduction {
		bad("env", "must be %q or %q, got %q", EnvDevelopment, EnvProduction, c.Env)
	}
	c.Database.Driver = strings.ToLower(strings.TrimSpace(c.Database.Driver))
	switch c.Database.Driver {
	case DriverSQLite:
		if c.Database.DSN == "" {
			c.Database.DSN = filepath.Join(c.DataDir, "postsvc.db")
		}
		if _, params, _ := strings.Cut(c.Database.DSN, "?"); params != "" {
			if _, err := url.ParseQuery(params); err != nil {
				bad("database.dsn", "must be a SQLite file path, optionally followed by ?name=value parameters (%v), got %q", err, c.Database.DSN)
			}
		}
	case DriverMySQL:
		if c.Database.DSN == "" {
			bad("database.dsn", "is required when %s is mysql", EnvName("database.driver"))
		} else if err := CheckMySQLDSN(c.Database.DSN); err != nil {
			errs = append(errs, err)
		}
	default:
		bad("database.driver", "must be %q or %q, got %q", DriverSQLite, DriverMySQL, c.Database.Driver)
	}
	if c.Database.MaxOpenConns < 1 {
		bad("database.max_open_conns", "must be at least 1")
	}
	if c.Database.MaxIdleConns < 0 {
		bad("database.max_idle_conns", "must not be negative")
	}
	if c.HTTP.Addr == "" {
		bad("http.addr", "is required")
	}
	positive := map[string]int64{
		"http.read_header_timeout":   int64(c.HTTP.ReadHeaderTimeout),
		"http.read_timeout":          int64(c.HTTP.ReadTimeout),
		"http.write_timeout":         int64(c.HTTP.WriteTimeout),
		"http.idle_timeout":          int64(c.HTTP.IdleTimeout),
		"http.max_connections":       int64(c.HTTP.MaxConnections),
		"http.shutdown_grace":        int64(c.HTTP.ShutdownGrace),
		"http.request_timeout":       int64(c.HTTP.RequestTimeout),
		"http.body_memory":           c.HTTP.BodyMemory,
		"auth.access_token_ttl":      int64(c.Auth.AccessTokenTTL),
		"auth.refresh_token_ttl":     int64(c.Auth.RefreshTokenTTL),
		"cache.posts_ttl":            int64(c.Cache.PostsTTL),
		"throttle.window":            int64(c.Throttle.Window),
		"auth.max_concurrent_hashes": int64(c.Auth.MaxConcurrentHashes),
		"auth.max_queued_hashes":     int64(c.Auth.MaxQueuedHashes),
		"auth.max_queued_per_client": int64(c.Auth.MaxQueuedPerClient),
		"auth.argon2_memory_kib":     int64(c.Auth.Argon2MemoryKiB),
		"auth.argon2_iterations":     int64(c.Auth.Argon2Iterations),
		"auth.argon2_parallelism":    int64(c.Auth.Argon2Parallelism),
		"throttle.account_failures":  int64(c.Throttle.AccountFailures),
		"throttle.addr_failures":     int64(c.Throttle.AddrFailures),
		"throttle.signup_attempts":   int64(c.Throttle.SignupAttempts),
		"posts.quota_bytes":          c.Posts.QuotaBytes,
		"ecg.max_body_bytes":         c.ECG.MaxBodyBytes,
		"ecg.spool_memory":           c.ECG.SpoolMemory,
		"ecg.spool_disk":             c.ECG.SpoolDisk,
		"ecg.quota_bytes":            c.ECG.QuotaBytes,
		"ecg.store_time_per_mib":     int64(c.ECG.StoreTimePerMiB),
		"media.max_file_bytes":       c.Media.MaxFileBytes,
		"media.quota_bytes":          c.Media.QuotaBytes,
		"media.max_files":            int64(c.Media.MaxFiles),
		"media.max_request_bytes":    c.Media.MaxRequestBytes,
		"media.upload_timeout":       int64(c.Media.UploadTimeout),
		"media.sweep_interval":       int64(c.Media.SweepInterval),
		"media.sweep_grace":          int64(c.Media.SweepGrace),
		"media.workers":              int64(c.Media.Workers),
	}
	for key, value := range positive {
		if value <= 0 {
			bad(key, "must be greater than zero")
		}
	}
	for key, value := range map[string]int64{
		"jobs.workers":          int64(c.Jobs.Workers),
		"jobs.lease":            int64(c.Jobs.Lease),
		"jobs.poll_interval":    int64(c.Jobs.PollInterval),
		"jobs.shutdown_grace":   int64(c.Jobs.ShutdownGrace),
		"jobs.failed_retention": int64(c.Jobs.FailedRetention),
	} {
		if value <= 0 {
			bad(key, "must be greater than zero")
		}
	}
	if c.Jobs.Lease > 0 && c.Jobs.Lease < time.Second {
		// Heartbeats renew a lease every third of it; shorter leases would have every running
		// job write to the database several times a second.
		bad("jobs.lease", "must be at least 1s")
	}
	c.HTTP.TrustedProxies = listItems(c.HTTP.TrustedProxies)
	for _, p := range c.HTTP.TrustedProxies {
		if !isAddressOrCIDR(p) {
			bad("http.trusted_proxies", "must list IP addresses or CIDRs separated by commas, such as 10.0.0.0/8,192.168.1.7; %q is neither", p)
		}
	}
	c.HTTP.CORSOrigins = listItems(c.HTTP.CORSOrigins)
	for i, o := range c.HTTP.CORSOrigins {
		origin, ok := corsOrigin(o)
		if !ok {
			bad("http.cors_origins", "must list origins separated by commas, each a scheme, host and optional port such as https://app.example or http://localhost:3000 (no path, not even /), or *; %q is not one", o)
		}
		c.HTTP.CORSOrigins[i] = origin
	}
	if c.HTTP.PprofAddr != "" && !isLoopbackAddr(c.HTTP.PprofAddr) {
		bad("http.pprof_addr", "must be a loopback host:port such as 127.0.0.1:6060 (profiles expose the process's internals)")
	}
	if c.HTTP.OpsAddr != "" {
		if msg := opsAddrProblem(c.HTTP.OpsAddr, c.HTTP.Addr); msg != "" {
			bad("http.ops_addr", "%s", msg)
		}
	}
	if c.Auth.MaxHashesPerClient < 0 {
		bad("auth.max_hashes_per_client", "must not be negative (0 means half of %s)", EnvName("auth.max_concurrent_hashes"))
	}
	switch {
	case c.ECG.Workers < 0:
		bad("ecg.workers", "must not be negative (0 means the number of CPUs)")
	case c.ECG.Workers == 0:
		c.ECG.Workers = runtime.NumCPU()
	}
	if c.HTTP.ShutdownDelay < 0 {
		bad("http.shutdown_delay", "must not be negative")
	}
	if c.Cache.PostsMaxBytes < 0 {
		bad("cache.posts_max_bytes", "must not be negative")
	}
	if d := c.Auth.APIKeyFlushInterval; d <= 0 || d > time.Minute {
		// The contract lets last_used_at lag by up to a minute.
		bad("auth.key_flush_interval", "must be greater than zero and at most 1m")
	}
	if c.Auth.JWTIssuer == "" {
		bad("auth.jwt_issuer", "is required")
	}
	if c.Auth.JWTAudience == "" {
		bad("auth.jwt_audience", "is required")
	}
	switch c.Log.Format {
	case "":
		c.Log.Format = "text"
		if c.IsProduction() {
			c.Log.Format = "json"
		}
	case "text", "json":
	default:
		bad("log.format", `must be "text" or "json"`)
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error")
	}
	if (c.Bootstrap.AdminEmail == "") != (c.Bootstrap.AdminPassword == "") {
		bad("bootstrap.admin_email", "and %s must be set together", EnvName("bootstrap.admin_password"))
	}
	c.finishStorage(bad)
	c.finishRedis(bad)
	if len(errs) == 0 {
		if err := c.resolveSecret(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// resolveSecret enforces the production secret rule and, in development, generates a random
// secret once and keeps it in the data folder so tokens survive restarts.
func (c *Config) resolveSecret() error {
	if c.Auth.JWTSecret != "" {
		if c.IsProduction() && len(c.Auth.JWTSecret) < MinSecretBytes {
			return fmt.Errorf("%s: must be at least %d bytes in production", EnvName("auth.jwt_secret"), MinSecretBytes)
		}
		return nil
	}
	if c.IsProduction() {
		return fmt.Errorf("%s: is required in production (at least %d bytes)", EnvName("auth.jwt_secret"), MinSecretBytes)
	}
	// The path is built from the operator's own data_dir setting, not from request input.
	path := filepath.Clean(filepath.Join(c.DataDir, "jwt-secret"))
	if b, err := os.ReadFile(path); err == nil { //nolint:gosec // G304: operator-chosen path
		if s := strings.TrimSpace(string(b)); len(s) >= MinSecretBytes {
			c.Auth.JWTSecret = s
			return nil
		}
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("%s: cannot create %s: %w", EnvName("data_dir"), c.DataDir, err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return err
	}
	secret := hex.EncodeToString(raw[:])
	// O_EXCL: when two processes start at once, one writes and the other reads its secret.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) //nolint:gosec // G304: operator-chosen path
	if errors.Is(err, os.ErrExist) {
		b, readErr := os.ReadFile(path) //nolint:gosec // G304: operator-chosen path
		if s := strings.TrimSpace(string(b)); readErr == nil && len(s) >= MinSecretBytes {
			c.Auth.JWTSecret = s
			return nil
		}
		return fmt.Errorf("%s: %s holds no usable secret; delete it to have a new one generated", EnvName("auth.jwt_secret"), path)
	}
	if err == nil {
		_, err = f.WriteString(secret + "\n")
		if closeErr := f.Close(); err == nil {
			err = closeErr
		}
	}
	if err != nil {
		return fmt.Errorf("%s: cannot write development secret to %s: %w", EnvName("data_dir"), path, err)
	}
	c.Auth.JWTSecret = secret
	return nil
}

// listItems trims the spaces around each item of a comma-separated list setting and drops the
// empty ones: "a, b," is the list a, b, as someone writing it would expect.
func listItems(items []string) []string {
	out := items[:0:0]
	for _, item := range items {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// isAddressOrCIDR reports whether s is an IP address or a CIDR, as gin's SetTrustedProxies
// takes them.
func isAddressOrCIDR(s string) bool {
	if _, err := netip.ParsePrefix(s); err == nil {
		return true
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

// corsOrigin returns the origin o names as browsers send it in Origin (scheme and host in
// lower case), or false when o is not an origin: an http or https URL with a host and
// nothing after it. "*" allows every origin.
func corsOrigin(o string) (string, bool) {
	if o == "*" {
		return o, true
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || u.Opaque != "" {
		return "", false
	}
	if strings.HasSuffix(u.Host, ":") {
		return "", false
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), true
}

// isLoopbackAddr reports whether addr is host:port with a loopback host (an IP in 127.0.0.0/8
// or ::1, or "localhost") and a port.
func isLoopbackAddr(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// opsAddrProblem says what is wrong with the operations listener's address, or returns "".
// Any host is allowed (Prometheus scrapes from another pod, so loopback would be useless in
// a cluster), but the address must name a port, and not the API's own port on an
// overlapping host, where the second listener could not bind; saying so here names the
// setting before anything starts.
func opsAddrProblem(ops, api string) string {
	host, port, err := net.SplitHostPort(ops)
	if err != nil || port == "" {
		return "must be host:port or :port, such as :9090"
	}
	apiHost, apiPort, err := net.SplitHostPort(api)
	if err != nil || port == "0" || port != apiPort {
		return ""
	}
	if host == apiHost || isWildcardHost(host) || isWildcardHost(apiHost) {
		return fmt.Sprintf("must not use the port of %s (%s)", EnvName("http.addr"), api)
	}
	return ""
}

// isWildcardHost reports whether a listen host means every interface.
func isWildcardHost(host string) bool {
	ip := net.ParseIP(host)
	return host == "" || ip != nil && ip.IsUnspecified()
}
