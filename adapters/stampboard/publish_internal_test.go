package stampboard

import (
	"log/slog"
	"testing"
	"time"

	"github.com/acme/postsvc/adapters/redisx"
	"github.com/acme/postsvc/test/testredis"
)

// TestPublishOfValuesAnotherRaiseHoldsWaitsOutItsWindow: a publication that raises nothing,
// because another publication raised the same counters a moment ago (two writes of one user
// on two instances), is answered only once the window of that raise has passed. Otherwise a
// read that begins after its answer could still be let through by a round trip that started
// before the raise and serve the value from before both writes. Long after the raise, the
// same publication is answered at once. The window is widened to 300 ms so that the test
// does not depend on this machine's speed.
func TestPublishOfValuesAnotherRaiseHoldsWaitsOutItsWindow(t *testing.T) {
	cfg := testredis.Config(t)
	open := func() *Redis {
		b, err := openRedis(cfg, redisx.NewHealth(slog.New(slog.DiscardHandler)), NewMemCutoffs(), defaultCutoffTiming)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		b.barrier.fresh = 300 * time.Millisecond
		return b
	}
	first, second := open(), open()
	ctx := t.Context()
	first.Publish(ctx, "u", "posts=7")

	raised := make(chan struct{})
	go func() {
		defer close(raised)
		first.Publish(ctx, "u", "posts=9")
	}()
	c := testredis.Client(t, cfg)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		v, _ := c.Do(ctx, c.B().Hget().Key(second.key("u")).Field("posts").Build()).ToString()
		if v == "9" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the raise to posts=9 never reached Redis")
		}
	}
	start := time.Now()
	second.Publish(ctx, "u", "posts=8")
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("a publication held by a raise that ran at most a moment before was answered after %v; want it to wait out most of the 300 ms window", d)
	}
	<-raised

	time.Sleep(350 * time.Millisecond)
	start = time.Now()
	second.Publish(ctx, "u", "posts=8")
	if d := time.Since(start); d > 150*time.Millisecond {
		t.Fatalf("a publication of known values long after the last raise took %v; want no wait", d)
	}
}
