package fakes

import (
	"context"
	"crypto/subtle"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/session"
	"github.com/acme/postsvc/domain/user"
	"github.com/acme/postsvc/ports"
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

// Hasher is a fast, transparent stand-in for argon2id. It counts calls so tests can check
// that unknown emails pay the same hashing work as wrong passwords, and records the client
// of each call so they can check whose share of the hasher it was. Err, when set, is
// returned by every call instead of hashing (an overloaded hasher, say).
type Hasher struct {
	Hashes   atomic.Int64
	Verifies atomic.Int64
	Err      error

	mu      sync.Mutex
	clients []ports.ClientKey
}

// Clients returns the client of every call so far, in order.
func (h *Hasher) Clients() []ports.ClientKey {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]ports.ClientKey(nil), h.clients...)
}

func (h *Hasher) begin(ctx context.Context, client ports.ClientKey) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if h.Err != nil {
		return h.Err
	}
	h.mu.Lock()
	h.clients = append(h.clients, client)
	h.mu.Unlock()
	return nil
}

// Hash returns "fake$" + plain.
func (h *Hasher) Hash(ctx context.Context, client ports.ClientKey, plain string) (user.PasswordHash, error) {
	if err := h.begin(ctx, client); err != nil {
		return "", err
	}
	h.Hashes.Add(1)
	return user.PasswordHash("fake$" + plain), nil
}

// Verify compares in constant time.
func (h *Hasher) Verify(ctx context.Context, client ports.ClientKey, hash user.PasswordHash, plain string) (bool, error) {
	if err := h.begin(ctx, client); err != nil {
		return false, err
	}
	h.Verifies.Add(1)
	stored, ok := strings.CutPrefix(string(hash), "fake$")
	if !ok {
		return false, fmt.Errorf("fakes: malformed hash")
	}
	return subtle.ConstantTimeCompare([]byte(stored), []byte(plain)) == 1, nil
}

// Tokens issues readable tokens "tok|<user>|<session>|<expiry unix>" checked against a clock.
type Tokens struct {
	Clock    ports.Clock
	Lifetime time.Duration
}

// Issue makes a token.
func (t *Tokens) Issue(uid user.ID, sid session.ID) (string, time.Duration, error) {
	exp := t.Clock.Now().Add(t.Lifetime).Unix()
	return fmt.Sprintf("tok|%s|%s|%d", uid, sid, exp), t.Lifetime, nil
}

// Verify parses a token made by Issue.
func (t *Tokens) Verify(token string) (ports.AccessClaims, error) {
	var uid, sid string
	var exp int64
	parts := strings.Split(token, "|")
	if len(parts) != 4 || parts[0] != "tok" {
		return ports.AccessClaims{}, domain.ErrUnauthenticated
	}
	uid, sid = parts[1], parts[2]
	if _, err := fmt.Sscan(parts[3], &exp); err != nil || uid == "" || sid == "" {
		return ports.AccessClaims{}, domain.ErrUnauthenticated
	}
	if !t.Clock.Now().Before(time.Unix(exp, 0)) {
		return ports.AccessClaims{}, fmt.Errorf("%w: expired", domain.ErrUnauthenticated)
	}
	return ports.AccessClaims{UserID: user.ID(uid), SessionID: session.ID(sid), ExpiresAt: time.Unix(exp, 0)}, nil
}

// Cache is a map-backed post-list cache without expiry or budget; it records what was
// forgotten so tests can check that the cache is touched only after a commit.
type Cache struct {
	mu        sync.Mutex
	pages     map[ports.PostPageKey]ports.PostPage
	Forgotten []user.ID
	Loads     int
}

// NewCache returns an empty cache.
func NewCache() *Cache { return &Cache{pages: map[ports.PostPageKey]ports.PostPage{}} }

// GetOrLoad implements ports.PostListCache.
func (c *Cache) GetOrLoad(ctx context.Context, key ports.PostPageKey, load func(context.Context) (ports.PostPage, error)) (ports.PostPage, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.pages[key]; ok {
		return ports.PostPage{Posts: append(p.Posts[:0:0], p.Posts...), NextCursor: p.NextCursor}, true, nil
	}
	c.Loads++
	p, err := load(ctx)
	if err != nil {
		return ports.PostPage{}, false, err
	}
	c.pages[key] = ports.PostPage{Posts: append(p.Posts[:0:0], p.Posts...), NextCursor: p.NextCursor}
	return p, false, nil
}

// Forget implements ports.PostListCache.
func (c *Cache) Forget(id user.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Forgotten = append(c.Forgotten, id)
	for k := range c.pages {
		if k.UserID == id {
			delete(c.pages, k)
		}
	}
}

// Throttle admits Limit attempts per key until they are refunded or the key is reset; it
// keeps the count of each key so tests can check what was recorded. Like the real one, it
// checks and takes under one lock.
type Throttle struct {
	mu       sync.Mutex
	Limit    int
	attempts map[string]int
}

// Admit implements ports.AttemptThrottle.
func (t *Throttle) Admit(_ context.Context, keys ...string) error {
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
