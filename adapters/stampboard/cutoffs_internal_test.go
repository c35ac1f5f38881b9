package stampboard

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/acme/postsvc/adapters/redisx"
	"github.com/acme/postsvc/test/testredis"
)

// MemCutoffs is an in-memory board_cutoffs for the tests (gormstore.Cutoffs runs the same
// contract on the databases, tested there); SetFailing makes every call fail, as an
// unreachable database would.
type MemCutoffs struct {
	mu      sync.Mutex
	rows    map[string]int64
	failing bool
}

// NewMemCutoffs returns an empty table.
func NewMemCutoffs() *MemCutoffs { return &MemCutoffs{rows: map[string]int64{}} }

var errTableDown = errors.New("test: the database is unreachable")

func (c *MemCutoffs) List(context.Context) (map[string]int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failing {
		return nil, errTableDown
	}
	return maps.Clone(c.rows), nil
}

func (c *MemCutoffs) Beat(_ context.Context, member string, beat int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failing {
		return errTableDown
	}
	c.rows[member] = beat
	return nil
}

func (c *MemCutoffs) Remove(_ context.Context, member string, beat int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failing {
		return errTableDown
	}
	if cur, ok := c.rows[member]; ok && (beat < 0 || cur == beat) {
		delete(c.rows, member)
	}
	return nil
}

// SetFailing makes every call fail (true) or work again (false).
func (c *MemCutoffs) SetFailing(v bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failing = v
}

// Len returns the number of rows.
func (c *MemCutoffs) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.rows)
}

// TestCutoffRowOfAGoneProcessStopsHoldingOthersBack: a row whose heartbeat stops moving (its
// process died while cut off) holds the other instances back for deadAfter, by their own
// clocks, and is deleted after forgetAfter; the generation moves when it stops counting, so
// nothing kept meanwhile is trusted.
func TestCutoffRowOfAGoneProcessStopsHoldingOthersBack(t *testing.T) {
	table := NewMemCutoffs()
	table.rows["gone"] = 7
	timing := cutoffTiming{
		watchEvery: 20 * time.Millisecond, watchStale: 400 * time.Millisecond,
		beatEvery: 50 * time.Millisecond, deadAfter: 500 * time.Millisecond, forgetAfter: time.Second,
	}
	h := redisx.NewHealth(slog.New(slog.NewTextHandler(io.Discard, nil)))
	b, err := openRedis(testredis.Config(t), h, table, timing)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ctx := t.Context()
	b.Publish(ctx, "u", "auth=1")
	if _, ok := b.Read(ctx, "u"); ok {
		t.Fatal("the board vouched while another instance's row was live")
	}
	if h.Cutoffs() != 1 {
		t.Fatalf("Cutoffs() = %d, want 1", h.Cutoffs())
	}
	gen := b.Generation()
	waitFor(t, 2*time.Second, "the gone process's row to stop counting", func() bool {
		_, ok := b.Read(ctx, "u")
		return ok
	})
	if b.Generation() == gen {
		t.Fatal("the generation did not move when the row stopped counting")
	}
	if h.Cutoffs() != 0 {
		t.Fatalf("Cutoffs() = %d after the row stopped counting, want 0", h.Cutoffs())
	}
	waitFor(t, 3*time.Second, "the row to be deleted", func() bool { return table.Len() == 0 })

	// A heartbeat that moves again counts again.
	if err := table.Beat(ctx, "back", 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "a new row to hold the board back", func() bool {
		_, ok := b.Read(ctx, "u")
		return !ok
	})
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting %v for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
