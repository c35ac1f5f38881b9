// Package config holds the service's typed settings. Load reads them once at start-up from
// defaults, an optional file, APP_* environment variables and command-line flags (later wins),
// and validates them with messages that name the bad setting.
package config

import (
	"time"
)

// Config is every setting of the service. Field tags are the viper keys; the environment
// variable of a key is APP_ plus the key upper-cased with dots turned into underscores
// (database.dsn -> APP_DATABASE_DSN). A unit tag names the unit of a whole number ("bytes")
// and secret:"true" marks a value that no message may show; both serve the messages about
// values that do not decode (decode.go).
type Config struct {
	Env       string    `mapstructure:"env"`
	DataDir   string    `mapstructure:"data_dir"`
	HTTP      HTTP      `mapstructure:"http"`
	Database  Database  `mapstructure:"database"`
	Auth      Auth      `mapstructure:"auth"`
	Cache     Cache     `mapstructure:"cache"`
	Throttle  Throttle  `mapstructure:"throttle"`
	Log       Log       `mapstructure:"log"`
	Bootstrap Bootstrap `mapstructure:"bootstrap"`
	Jobs      Jobs      `mapstructure:"jobs"`
	Posts     Posts     `mapstructure:"posts"`
	ECG       ECG       `mapstructure:"ecg"`
	Media     Media     `mapstructure:"media"`
	Storage   Storage   `mapstructure:"storage"`
	Redis     Redis     `mapstructure:"redis"`

	// Warnings are what Load found questionable but not wrong enough to stop start-up: APP_
	// variables that are not settings but close to one (see nearMissEnv). The commands log
	// them.
	Warnings []string `mapstructure:"-"`
}

// Environments.
const (
	EnvDevelopment = "development"
	EnvProduction  = "production"
)

// Database drivers.
const (
	DriverSQLite = "sqlite"
	DriverMySQL  = "mysql"
)

// IsProduction reports whether the service runs with production safeguards.
func (c *Config) IsProduction() bool { return c.Env == EnvProduction }

// HTTP configures the listener and request handling.
type HTTP struct {
	Addr              string        `mapstructure:"addr"`
	ReadHeaderTimeout time.Duration `mapstructure:"read_header_timeout"`
	ReadTimeout       time.Duration `mapstructure:"read_timeout"`
	WriteTimeout      time.Duration `mapstructure:"write_timeout"`
	IdleTimeout       time.Duration `mapstructure:"idle_timeout"`
	// MaxConnections caps the connections each listener holds open at once; one past it is
	// answered 503 overloaded and closed (httpapi.LimitConnections).
	MaxConnections int `mapstructure:"max_connections"`
	// ShutdownDelay is how long the server keeps serving after SIGTERM with /readyz already
	// answering 503, so load balancers (Kubernetes endpoints) stop sending new requests
	// before the listener closes. ShutdownGrace starts after it.
	ShutdownDelay time.Duration `mapstructure:"shutdown_delay"`
	ShutdownGrace time.Duration `mapstructure:"shutdown_grace"`
	// RequestTimeout bounds the database work of one request, so an outage is answered
	// with 503 within seconds instead of hanging. The time spent receiving the request body
	// does not count: ReadTimeout bounds that, and a body still arriving when it ends is
	// answered 408.
	RequestTimeout time.Duration `mapstructure:"request_timeout"`
	// BodyMemory bounds the memory that request bodies being decoded take at once; a request
	// waits for its share, and is shed as overloaded if its deadline passes first.
	BodyMemory int64 `mapstructure:"body_memory" unit:"bytes"`
	// TrustedProxies lists the addresses or CIDRs whose X-Forwarded-For is believed.
	TrustedProxies []string `mapstructure:"trusted_proxies"`
	// CORSOrigins lists the browser origins allowed to call the API; none by default.
	CORSOrigins []string `mapstructure:"cors_origins"`
	// PprofAddr, when set, is a loopback address on which a second listener serves the Go
	// profiler (net/http/pprof), for profiling a running instance. Off by default.
	PprofAddr string `mapstructure:"pprof_addr"`
	// OpsAddr, when set, is the host:port of a second listener for operators: GET /metrics
	// moves there (and the API's address answers it 404), and /livez and /readyz are served
	// there as well as on the API's address. Unlike PprofAddr it need not be loopback, since
	// Prometheus scrapes from another host or pod; keep it off the public load balancer.
	OpsAddr string `mapstructure:"ops_addr"`
}

// Database selects and tunes the store.
type Database struct {
	Driver          string        `mapstructure:"driver"`
	DSN             string        `mapstructure:"dsn" secret:"true"`
	MaxOpenConns    int           `mapstructure:"max_open_conns"`
	MaxIdleConns    int           `mapstructure:"max_idle_conns"`
	ConnMaxLifetime time.Duration `mapstructure:"conn_max_lifetime"`
	// MigrateOnStart applies pending migrations when the server starts.
	MigrateOnStart bool `mapstructure:"migrate_on_start"`
}

// Auth configures passwords and tokens.
type Auth struct {
	JWTSecret       string        `mapstructure:"jwt_secret" secret:"true"`
	JWTIssuer       string        `mapstructure:"jwt_issuer"`
	JWTAudience     string        `mapstructure:"jwt_audience"`
	AccessTokenTTL  time.Duration `mapstructure:"access_token_ttl"`
	RefreshTokenTTL time.Duration `mapstructure:"refresh_token_ttl"`
	// APIKeyFlushInterval is how often the recorded uses of personal API keys are written
	// to their last_used_at, in one batch; the contract allows a lag of a minute at most.
	APIKeyFlushInterval time.Duration `mapstructure:"key_flush_interval"`
	// MaxConcurrentHashes bounds argon2id runs in flight; each holds Argon2MemoryKiB.
	MaxConcurrentHashes int    `mapstructure:"max_concurrent_hashes"`
	Argon2MemoryKiB     uint32 `mapstructure:"argon2_memory_kib" unit:"KiB"`
	Argon2Iterations    uint32 `mapstructure:"argon2_iterations"`
	Argon2Parallelism   uint8  `mapstructure:"argon2_parallelism"`

	// MaxQueuedHashes bounds the password checks waiting for a slot, all clients together,
	// and MaxQueuedPerClient those of one client address; beyond them a check is refused at
	// once with 503 overloaded instead of waiting towards the request timeout.
	MaxQueuedHashes    int `mapstructure:"max_queued_hashes"`
	MaxQueuedPerClient int `mapstructure:"max_queued_per_client"`
	// MaxHashesPerClient is how many slots one client address may hold at once, so that a
	// slot stays free for others while one floods; 0 means half of MaxConcurrentHashes (at
	// least one).
	MaxHashesPerClient int `mapstructure:"max_hashes_per_client"`
}

// Cache configures the in-memory post-list cache.
type Cache struct {
	PostsTTL      time.Duration `mapstructure:"posts_ttl"`
	PostsMaxBytes int64         `mapstructure:"posts_max_bytes" unit:"bytes"`
}

// Throttle configures the throttling of login attempts and signups.
type Throttle struct {
	Window          time.Duration `mapstructure:"window"`
	AccountFailures int           `mapstructure:"account_failures"`
	AddrFailures    int           `mapstructure:"addr_failures"`
	// SignupAttempts is how many signups one client address may make per Window; each one
	// costs a password hash, so unthrottled signups are a cheap way to occupy the hasher.
	SignupAttempts int `mapstructure:"signup_attempts"`
}

// Log configures logging.
type Log struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

// Bootstrap creates the first admin on the first start, when both are set.
type Bootstrap struct {
	AdminEmail    string `mapstructure:"admin_email"`
	AdminPassword string `mapstructure:"admin_password" secret:"true"`
}

// Jobs configures the background job workers of this process (adapters/worker).
type Jobs struct {
	// Workers is how many jobs this process runs at once.
	Workers int `mapstructure:"workers"`
	// Lease is how long a claimed job stays its worker's without a heartbeat: after a crash,
	// its jobs are taken over this long after the last heartbeat.
	Lease time.Duration `mapstructure:"lease"`
	// PollInterval is the longest an idle worker waits before looking for new jobs.
	PollInterval time.Duration `mapstructure:"poll_interval"`
	// ShutdownGrace is how long running jobs get to finish after SIGTERM before they are
	// cancelled and handed back to other instances. It runs alongside the HTTP shutdown.
	ShutdownGrace time.Duration `mapstructure:"shutdown_grace"`
	// FailedRetention is how long jobs that failed for good are kept for operators to read
	// their reasons before they are purged.
	FailedRetention time.Duration `mapstructure:"failed_retention"`
}

// Posts configures the posts context.
type Posts struct {
	// QuotaBytes bounds the total size of one user's post texts; an add past it is refused
	// (403 quota_exceeded).
	QuotaBytes int64 `mapstructure:"quota_bytes" unit:"bytes"`
}

// ECG configures the ECG context: uploads and their analysis workers.
type ECG struct {
	// MaxBodyBytes bounds an upload's body, and its size once decompressed when it is sent
	// gzip-compressed.
	MaxBodyBytes int64 `mapstructure:"max_body_bytes" unit:"bytes"`
	// Workers is how many analyses this process runs at once; 0 means the number of CPUs.
	// They run beside the general job workers (Jobs.Workers), so analyses never wait behind
	// other jobs, nor other jobs behind a burst of uploads.
	Workers int `mapstructure:"workers"`
	// SpoolMemory bounds the memory that the signals of uploads being received, and of large
	// ECGs being read back, take, all together; each keeps at most a sixteenth of it in
	// memory, and what does not fit goes to a temporary file in SpoolDir until the upload is
	// stored or the read answered.
	SpoolMemory int64 `mapstructure:"spool_memory" unit:"bytes"`
	// SpoolDir is where those temporary files go; empty means the system's temporary folder.
	SpoolDir string `mapstructure:"spool_dir"`
	// SpoolDisk bounds what those files hold, all together; an upload or a read that would
	// pass it is answered 503 overloaded. Reads take at most half of it, and of SpoolMemory,
	// so that readers slow to take their answers always leave uploads the other half.
	SpoolDisk int64 `mapstructure:"spool_disk" unit:"bytes"`
	// QuotaBytes bounds the total size of one user's ECGs, counted as the packed bytes of
	// their samples (what the database stores); an upload past it is refused (403).
	QuotaBytes int64 `mapstructure:"quota_bytes" unit:"bytes"`
	// StoreTimePerMiB is the time an upload gets to be stored, per MiB of its body, on top
	// of the request timeout (which alone bounds a typical upload's database work): a 64 MiB
	// upload writes tens of megabytes in one transaction, which takes longer than a post.
	StoreTimePerMiB time.Duration `mapstructure:"store_time_per_mib"`
}

// Media configures the image repository.
type Media struct {
	// MaxFileBytes bounds one image file of an upload.
	MaxFileBytes int64 `mapstructure:"max_file_bytes" unit:"bytes"`
	// QuotaBytes bounds the total size of one user's images.
	QuotaBytes int64 `mapstructure:"quota_bytes" unit:"bytes"`
	// MaxFiles bounds the files of one upload request.
	MaxFiles int `mapstructure:"max_files"`
	// MaxRequestBytes bounds an upload request's body.
	MaxRequestBytes int64 `mapstructure:"max_request_bytes" unit:"bytes"`
	// UploadTimeout bounds the work of one upload request (cleaning and storing its files as
	// they arrive), on top of which its body must arrive within HTTP.ReadTimeout.
	UploadTimeout time.Duration `mapstructure:"upload_timeout"`
	// Workers is how many thumbnails and object deletions this process runs at once, in a
	// pool of their own so that a burst of uploads delays no other jobs.
	Workers int `mapstructure:"workers"`
	// SweepInterval is how often stored objects that no image refers to are looked for and
	// removed (also once at start).
	SweepInterval time.Duration `mapstructure:"sweep_interval"`
	// SweepGrace is how old such an object must be to be removed: longer than any upload
	// takes, so an upload still in progress never loses its files.
	SweepGrace time.Duration `mapstructure:"sweep_grace"`
}
