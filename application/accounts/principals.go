package accounts

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
)

// Principals keeps the principals that credentials resolved to in process memory, so that an
// authenticated request needs no database read, and still sees every logout, refresh-token
// reuse, role change, deletion and key revocation committed through any instance on its very
// next request. A kept principal is used only while:
//
//   - the board's generation is the one it was read under (the board has missed nothing since),
//   - the user's "auth" stamp on the board is the one the database gave with it (every
//     revocation bumps it in its transaction and publishes it before it is answered), and
//   - its credential has not expired, and it is younger than MaxAge.
//
// Its other stamps are taken from the board on every request, so caches keyed by them (the
// post lists) see writes made on other instances. Whatever the board cannot vouch for is read
// from the database and published, exactly as without a board. With no board (nil) every
// principal is read from the database.
type Principals struct {
	board  ports.StampBoard
	maxAge time.Duration

	mu      sync.RWMutex
	entries map[string]principalEntry
	max     int

	hits, misses atomic.Int64
}

type principalEntry struct {
	p        identity.Principal // Stamps left empty: they come from the board
	auth     int64
	gen      uint64
	readAt   time.Time
	expireAt time.Time // zero: the credential does not expire
}

// PrincipalSettings bound the memory and the age of kept principals.
type PrincipalSettings struct {
	// MaxEntries bounds the credentials kept; past it the cache starts again empty.
	MaxEntries int
	// MaxAge bounds how long a principal is kept without being read again from the
	// database; a backstop for a revocation whose publication was lost with its instance.
	MaxAge time.Duration
}

// Defaults when a setting is zero.
const (
	DefaultPrincipalEntries = 100_000
	DefaultPrincipalMaxAge  = time.Minute
)

// NewPrincipals returns an empty cache over board.
func NewPrincipals(board ports.StampBoard, s PrincipalSettings) *Principals {
	if s.MaxEntries <= 0 {
		s.MaxEntries = DefaultPrincipalEntries
	}
	if s.MaxAge <= 0 {
		s.MaxAge = DefaultPrincipalMaxAge
	}
	return &Principals{board: board, maxAge: s.MaxAge, max: s.MaxEntries, entries: make(map[string]principalEntry)}
}

// Stats returns how many principals were served from memory and how many were read.
// With no board every principal counts as a miss.
func (c *Principals) Stats() (hits, misses int64) { return c.hits.Load(), c.misses.Load() }

// Resolve returns the principal of credential key (a scheme's own name for the credential,
// such as its session id), from memory when the board vouches for it, or else from read,
// whose result it publishes and keeps. expireAt is when the credential stops being valid.
func (c *Principals) Resolve(ctx context.Context, key string, now time.Time,
	read func(ctx context.Context) (identity.Principal, time.Time, error),
) (identity.Principal, error) {
	if c.board == nil {
		c.misses.Add(1)
		p, _, err := read(ctx)
		return p, err
	}
	if p, ok := c.lookup(ctx, key, now); ok {
		c.hits.Add(1)
		return p, nil
	}
	c.misses.Add(1)
	gen := c.board.Generation() // before the database read: a later change makes the entry stale
	p, expireAt, err := read(ctx)
	if err != nil {
		c.forget(key)
		return identity.Principal{}, err
	}
	c.board.Publish(ctx, p.UserID, p.Stamps)
	e := principalEntry{p: p, auth: p.Stamps.Get(ports.StampScopeAuth), gen: gen, readAt: now, expireAt: expireAt}
	e.p.Stamps = ""
	c.mu.Lock()
	if len(c.entries) >= c.max {
		c.entries = make(map[string]principalEntry)
	}
	c.entries[key] = e
	c.mu.Unlock()
	return p, nil
}

func (c *Principals) lookup(ctx context.Context, key string, now time.Time) (identity.Principal, bool) {
	c.mu.RLock()
	e, ok := c.entries[key]
	c.mu.RUnlock()
	if !ok || e.gen != c.board.Generation() || now.Sub(e.readAt) >= c.maxAge || now.Before(e.readAt) ||
		(!e.expireAt.IsZero() && !now.Before(e.expireAt)) {
		return identity.Principal{}, false
	}
	stamps, ok := c.board.Read(ctx, e.p.UserID)
	if !ok || stamps.Get(ports.StampScopeAuth) != e.auth || e.gen != c.board.Generation() {
		return identity.Principal{}, false
	}
	p := e.p
	p.Stamps = stamps
	return p, true
}

func (c *Principals) forget(key string) {
	c.mu.Lock()
	delete(c.entries, key)
	c.mu.Unlock()
}
