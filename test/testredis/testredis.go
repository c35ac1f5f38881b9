// Package testredis gives tests a real Redis server and an isolated key prefix on it. The
// server is, in order of preference: the one named by TEST_REDIS_URL (for example
// "redis://127.0.0.1:6379/0"); a redis:7 container started once per test binary with
// testcontainers when a Docker engine answers; otherwise the Redis tests are skipped, except in
// CI (CI=true), where they fail, so that a pipeline without Redis cannot pass by testing
// nothing. miniredis is not an option: it does not implement CLIENT TRACKING, which the
// principal board depends on.
package testredis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"
	tcredis "github.com/testcontainers/testcontainers-go/modules/redis"

	"github.com/acme/postsvc/adapters/redisx"
	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/test/testdb"
)

// EnvRedisURL names the Redis server the tests use when set.
const EnvRedisURL = "TEST_REDIS_URL"

const redisImage = "redis:7"

var (
	once   sync.Once
	server struct {
		url, unavailable string
		err              error
	}
)

// URL returns the test Redis server's URL, or skips the test (fails it when CI=true) when
// there is none.
func URL(t testing.TB) string {
	t.Helper()
	once.Do(find)
	switch {
	case server.err != nil:
		t.Fatalf("testredis: %v", server.err)
	case server.unavailable != "" && os.Getenv("CI") == "true":
		t.Fatalf("testredis: the Redis suite cannot run in CI: %s; set %s or provide a Docker engine", server.unavailable, EnvRedisURL)
	case server.unavailable != "":
		t.Skipf("testredis: skipping Redis: %s; set %s (e.g. %s=redis://127.0.0.1:6379/0) or start Docker to run it",
			server.unavailable, EnvRedisURL, EnvRedisURL)
	}
	return server.url
}

// Config returns settings for the test server with a prefix no other test uses, so tests
// sharing the server never see each other's keys.
func Config(t testing.TB) config.Redis {
	t.Helper()
	return config.Redis{URL: URL(t), Prefix: Prefix(), Timeout: 2 * time.Second}
}

// Client opens a client on Config(t)'s server, closed when the test ends, and checks that the
// server answers.
func Client(t testing.TB, cfg config.Redis) rueidis.Client {
	t.Helper()
	c, err := redisx.Open(cfg, nil)
	if err != nil {
		t.Fatalf("testredis: %v", err)
	}
	t.Cleanup(c.Close)
	if err := redisx.Ping(context.Background(), c, 5*time.Second); err != nil {
		t.Fatalf("testredis: %s does not answer: %v", cfg.URL, err)
	}
	return c
}

// Prefix returns a fresh key prefix.
func Prefix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "test:" + hex.EncodeToString(b) + ":"
}

func find() {
	if u := os.Getenv(EnvRedisURL); u != "" {
		if _, err := rueidis.ParseURL(u); err != nil {
			server.err = fmt.Errorf("invalid %s: %w", EnvRedisURL, err)
		}
		server.url = u
		return
	}
	if reason := testdb.DockerUnavailable(); reason != "" {
		server.unavailable = "no " + EnvRedisURL + " and " + reason
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ctr, err := tcredis.Run(ctx, redisImage)
	if err != nil {
		server.err = fmt.Errorf("start %s container: %w", redisImage, err)
		return
	}
	// The container lives as long as the test binary; testcontainers' reaper removes it.
	server.url, server.err = ctr.ConnectionString(ctx)
}
