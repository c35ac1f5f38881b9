package config

import (
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// Redis configures the Redis server that instances share: invalidations of the principals and
// stamps they keep in memory, and the attempt throttle. Without a URL there is no Redis: with
// SQLite the service is one process and keeps everything in memory; with MySQL every request
// reads its principal from the database, which is correct for any number of instances, only
// slower.
type Redis struct {
	// URL is redis://[user:password@]host:port[/db] or rediss:// for TLS; empty for none.
	URL string `mapstructure:"url" secret:"true"`
	// Prefix starts every key the service writes, so that several deployments (or test runs)
	// can share one server.
	Prefix string `mapstructure:"prefix"`
	// Timeout bounds one round trip; past it Redis counts as unreachable for that request,
	// which then falls back to the database.
	Timeout time.Duration `mapstructure:"timeout"`
}

// Enabled reports whether a Redis server is configured.
func (r Redis) Enabled() bool { return r.URL != "" }

// finishRedis validates the Redis settings. No message shows the URL, which may hold a
// password.
func (c *Config) finishRedis(bad func(key, format string, args ...any)) {
	r := &c.Redis
	r.URL = strings.TrimSpace(r.URL)
	if r.URL != "" {
		if _, err := rueidis.ParseURL(r.URL); err != nil {
			bad("redis.url", "must be a redis:// or rediss:// URL (redis://host:6379/0)")
		}
	}
	if r.Prefix == "" || len(r.Prefix) > 64 || strings.ContainsAny(r.Prefix, " \t\r\n{}") {
		bad("redis.prefix", "must be 1 to 64 characters without spaces or braces")
	}
	if r.Timeout <= 0 || r.Timeout > time.Minute {
		bad("redis.timeout", "must be between 1ms and 1m")
	}
}
