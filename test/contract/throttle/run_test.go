package throttle_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/acme/postsvc/adapters/throttle"
	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/test/contract"
	throttlecontract "github.com/acme/postsvc/test/contract/throttle"
	"github.com/acme/postsvc/test/testredis"
)

// TestMemory runs the throttle contract on the in-process throttle.
func TestMemory(t *testing.T) {
	contract.Run(t, throttlecontract.Tests(), func(t *testing.T) throttlecontract.Backend {
		return throttlecontract.Backend{New: func(t *testing.T, cfg config.Throttle, clock ports.Clock) ports.AttemptThrottle {
			return throttle.NewMemory(cfg, clock)
		}}
	})
}

// TestShared runs the throttle contract on the Redis throttle, each throttle under a key
// prefix of its own on one client. Any failed Redis call fails the test: a pass must not come
// from the local fallback. The suite moves a fake clock, so the scripts take their time from it
// (UseClockTime); the tests in shared_test.go run on Redis's time, as production does.
func TestShared(t *testing.T) {
	cfg := testredis.Config(t)
	client := testredis.Client(t, cfg)
	contract.Run(t, throttlecontract.Tests(), func(t *testing.T) throttlecontract.Backend {
		return throttlecontract.Backend{New: func(t *testing.T, tcfg config.Throttle, clock ports.Clock) ports.AttemptThrottle {
			prefix := isolated(t, client)
			return throttle.NewShared(client, prefix, cfg.Timeout, tcfg, clock, nil, strictHealth{t}, throttle.UseClockTime())
		}}
	})
}

// TestSharedAcrossInstances runs the throttle contract on three Redis throttles sharing a key
// prefix, each on a client of its own as three instances of the service would be, every call
// going to the next of them in turn: together they must behave as one throttle.
func TestSharedAcrossInstances(t *testing.T) {
	cfg := testredis.Config(t)
	clients := []rueidis.Client{testredis.Client(t, cfg), testredis.Client(t, cfg), testredis.Client(t, cfg)}
	contract.Run(t, throttlecontract.Tests(), func(t *testing.T) throttlecontract.Backend {
		return throttlecontract.Backend{New: func(t *testing.T, tcfg config.Throttle, clock ports.Clock) ports.AttemptThrottle {
			prefix := isolated(t, clients[0])
			rr := &roundRobin{}
			for _, c := range clients {
				rr.instances = append(rr.instances, throttle.NewShared(c, prefix, cfg.Timeout, tcfg, clock, nil, strictHealth{t}, throttle.UseClockTime()))
			}
			return rr
		}}
	})
}

// roundRobin sends each call to the next instance.
type roundRobin struct {
	instances []ports.AttemptThrottle
	next      atomic.Uint64
}

func (r *roundRobin) pick() ports.AttemptThrottle {
	return r.instances[(r.next.Add(1)-1)%uint64(len(r.instances))]
}

func (r *roundRobin) Admit(ctx context.Context, keys ...string) error {
	return r.pick().Admit(ctx, keys...)
}
func (r *roundRobin) Refund(ctx context.Context, keys ...string) { r.pick().Refund(ctx, keys...) }
func (r *roundRobin) Reset(ctx context.Context, keys ...string)  { r.pick().Reset(ctx, keys...) }

// strictHealth fails the test at the first Redis call that fails.
type strictHealth struct{ t testing.TB }

func (h strictHealth) Report(err error) {
	if err != nil {
		h.t.Errorf("a Redis call failed: %v", err)
	}
}

// isolated returns a fresh key prefix whose keys are deleted when the test ends.
func isolated(t testing.TB, client rueidis.Client) string {
	prefix := testredis.Prefix()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		keys := scan(ctx, t, client, prefix)
		if len(keys) > 0 {
			_ = client.Do(ctx, client.B().Del().Key(keys...).Build()).Error()
		}
	})
	return prefix
}

// scan lists the keys that start with prefix.
func scan(ctx context.Context, t testing.TB, client rueidis.Client, prefix string) []string {
	t.Helper()
	var keys []string
	cursor := uint64(0)
	for {
		e, err := client.Do(ctx, client.B().Scan().Cursor(cursor).Match(prefix+"*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			t.Fatalf("scan %s*: %v", prefix, err)
		}
		keys = append(keys, e.Elements...)
		if cursor = e.Cursor; cursor == 0 {
			return keys
		}
	}
}
