package redisx

import (
	"log/slog"
	"sync"
	"sync/atomic"
)

// Health tracks whether Redis answers, as seen by the adapters that use it. Every adapter
// reports the outcome of its Redis calls; the first failure after a success (and the first
// success after a failure) is logged once, so an outage gives two log lines, not one per
// request. The state and the number of transitions are exported as metrics.
type Health struct {
	log      *slog.Logger
	mu       sync.Mutex
	down     bool
	failures atomic.Int64 // calls that failed, all adapters together
	outages  atomic.Int64 // transitions from up to down
	onChange []func(up bool)
	cutoffs  atomic.Int64 // other instances cut off from Redis, as last read (stampboard.Cutoffs)
}

// NewHealth starts in the "up" state: an instance that cannot reach Redis finds out on its
// first call and logs it then.
func NewHealth(log *slog.Logger) *Health { return &Health{log: log} }

// OnChange registers f to run (outside the lock, synchronously) at every transition.
func (h *Health) OnChange(f func(up bool)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.onChange = append(h.onChange, f)
}

// Report records the outcome of one Redis call: err nil means Redis answered.
func (h *Health) Report(err error) {
	if err != nil {
		h.failures.Add(1)
	}
	down := err != nil
	h.mu.Lock()
	if h.down == down {
		h.mu.Unlock()
		return
	}
	h.down = down
	fs := h.onChange
	h.mu.Unlock()
	if down {
		h.outages.Add(1)
		h.log.Warn("redis unreachable: principals are read from the database and attempts are throttled locally until it answers again", "err", err)
	} else {
		h.log.Info("redis answers again: principals are served from memory and attempts are throttled in Redis")
	}
	for _, f := range fs {
		f(!down)
	}
}

// Up reports whether the last call reached Redis.
func (h *Health) Up() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.down
}

// Stats returns the counters for /metrics.
func (h *Health) Stats() (up bool, failures, outages int64) {
	return h.Up(), h.failures.Load(), h.outages.Load()
}

// SetCutoffs records how many other instances said, through the database, that they cannot
// reach Redis; the first such instance and the return to none are logged once each.
func (h *Health) SetCutoffs(n int) {
	old := h.cutoffs.Swap(int64(n))
	switch {
	case old == 0 && n > 0:
		h.log.Warn("another instance cannot reach Redis: principals and post lists are read from the database until it does", "instances", n)
	case old > 0 && n == 0:
		h.log.Info("every instance reaches Redis again: principals and post lists are served from memory")
	}
}

// Cutoffs returns the number SetCutoffs last recorded, for /metrics.
func (h *Health) Cutoffs() int64 { return h.cutoffs.Load() }

// Log returns the logger the health reports to.
func (h *Health) Log() *slog.Logger { return h.log }
