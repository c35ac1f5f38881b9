// Package redisx opens the Redis client that the adapters sharing state between instances use
// (the principal board, the attempt throttle), with the settings they depend on.
package redisx

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/redis/rueidis"

	"github.com/acme/postsvc/config"
)

// Open connects to the configured Redis server with RESP3 client-side caching on one
// connection. One connection matters: server-assisted invalidations arrive on the connection
// that read the key, in order with the replies to later commands on it, which is what lets a
// round trip on it act as a barrier (see the principal board).
//
// Open does not fail when the server is down: the client reconnects by itself, and every
// command fails fast until it answers again. It fails for settings that can never work.
func Open(cfg config.Redis, onInvalidations func([]rueidis.RedisMessage)) (rueidis.Client, error) {
	opt, err := rueidis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("redisx: %s: not a redis:// URL", config.EnvName("redis.url"))
	}
	opt.PipelineMultiplex = -1 // one pipelined connection; see the doc comment
	opt.ConnWriteTimeout = cfg.Timeout
	opt.Dialer = net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}
	opt.DisableRetry = true // a failed read falls back to the database at once
	opt.ForceSingleClient = true
	opt.OnInvalidations = onInvalidations
	opt.ClientName = "postsvc"
	// Client-side cache per connection: principals' stamps are a few hundred bytes each.
	opt.CacheSizeEachConn = 64 << 20
	// With ForceSingleClient the client is returned even when the first dial fails: a server
	// that is down at start is a degraded mode, not a failed start.
	client, err := rueidis.NewClient(opt)
	if client == nil {
		return nil, fmt.Errorf("redisx: connect: %w", err)
	}
	return client, nil
}

// Ping checks the server within the client's timeout.
func Ping(ctx context.Context, c rueidis.Client, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return c.Do(ctx, c.B().Ping().Build()).Error()
}
