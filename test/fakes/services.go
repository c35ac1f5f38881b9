package fakes

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acme/postsvc/domain"
)

// Clock is a settable clock.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock starts a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t.UTC()} }

// Now returns the current fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// IDs makes increasing ids ("00000000-0000-7000-8000-000000000001", ...), time-ordered like
// the real ones and shaped like them (canonical UUIDv7 text), so the use cases' id checks
// (paging.ValidID) accept them as they accept real ids.
type IDs struct{ n atomic.Int64 }

// NewID returns the next id.
func (g *IDs) NewID() string { return fmt.Sprintf("00000000-0000-7000-8000-%012d", g.n.Add(1)) }

// Throttle admits Limit attempts per key until they are refunded or the key is reset; it
// keeps the count of each key so tests can check what was recorded. Like the real one, it
// checks and takes under one lock. Calls counts every call of any of its methods.
type Throttle struct {
	Calls    atomic.Int64
	mu       sync.Mutex
	Limit    int
	attempts map[string]int
}

// Admit implements ports.AttemptThrottle.
func (t *Throttle) Admit(_ context.Context, keys ...string) error {
	t.Calls.Add(1)
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		if t.Limit > 0 && t.attempts[k] >= t.Limit {
			return &domain.ThrottledError{RetryAfter: time.Minute}
		}
	}
	if t.attempts == nil {
		t.attempts = map[string]int{}
	}
	for _, k := range keys {
		t.attempts[k]++
	}
	return nil
}

// Refund implements ports.AttemptThrottle.
func (t *Throttle) Refund(_ context.Context, keys ...string) {
	t.Calls.Add(1)
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		if t.attempts[k] > 0 {
			t.attempts[k]--
		}
	}
}

// Reset implements ports.AttemptThrottle.
func (t *Throttle) Reset(_ context.Context, keys ...string) {
	t.Calls.Add(1)
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		delete(t.attempts, k)
	}
}

// Attempts returns the attempts key holds now.
func (t *Throttle) Attempts(key string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.attempts[key]
}
