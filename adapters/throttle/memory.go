// Package throttle limits password attempts per account and per client address, and signups
// per client address.
package throttle

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/ports"
)

// Key prefixes the application uses, and the defaults used when a setting is left at zero.
const (
	AccountPrefix = "account:"
	AddrPrefix    = "addr:"
	SignupPrefix  = "signup:"

	DefaultWindow          = 15 * time.Minute
	DefaultAccountFailures = 10
	DefaultAddrFailures    = 50
	DefaultSignupAttempts  = 20
	// DefaultMaxKeys caps the keys tracked per kind (accounts, addresses, signups, anything
	// else). A tracked key costs on the order of a hundred bytes, so the cap bounds the
	// throttle at a few tens of megabytes however many addresses an attacker sprays.
	DefaultMaxKeys = 100_000
)

// Memory implements ports.AttemptThrottle in process memory. Each instance of the service
// throttles on its own, so behind a load balancer the effective limit is multiplied by the
// number of instances; a shared implementation can replace it behind the same port.
//
// Each key is a token bucket, kept in the GCRA form: a key holds only the time at which its
// bucket will be full again. The bucket holds limit tokens and refills at limit per window, so
// limit attempts in a burst are allowed and then one more every window/limit. Compared with a
// fixed or sliding window counter, this gives back attempts gradually instead of all at once,
// and it bounds how long anyone is locked out: once attempts stop, the next attempt is allowed
// within window/limit (90 seconds with the defaults) and the bucket is full again within one
// window. In particular an attacker's failures against an account from another address can
// never lock its owner out for longer than the window after the attacker stops; while the
// attack goes on the owner competes with it for the trickle of attempts, which is the price
// of protecting the password at all.
//
// An attempt takes its token when it is admitted, before any password is hashed, under the
// same lock that checked the budget. So however many attempts arrive at once, no more than
// the budget are ever admitted; an attempt that then tests nothing is refunded.
//
// Keys starting with "account:" get the account limit, "addr:" the address limit and
// "signup:" the signup limit; any other key gets the account limit, the strictest login
// default, so a caller's typo errs on the side of caution.
type Memory struct {
	clock ports.Clock
	mu    sync.Mutex
	kinds [4]*kind // accounts, addresses, signups, other; see kindOf
}

var _ ports.AttemptThrottle = (*Memory)(nil)

// NewMemory builds the throttle from its settings; zero or negative settings fall back to the
// defaults above.
func NewMemory(cfg config.Throttle, clock ports.Clock) *Memory {
	window, limits := settings(cfg)
	m := &Memory{clock: clock}
	for i, limit := range limits {
		m.kinds[i] = newKind(limit, window, DefaultMaxKeys)
	}
	return m
}

// settings resolves the window and the limit of each kind of key (in kindIndex order) from
// cfg, with the defaults for settings left at zero. Memory and Shared both use it, so they
// cannot disagree on a limit.
func settings(cfg config.Throttle) (window time.Duration, limits [4]int) {
	window = cfg.Window
	if window <= 0 {
		window = DefaultWindow
	}
	orDefault := func(v, def int) int {
		if v <= 0 {
			return def
		}
		return v
	}
	account := orDefault(cfg.AccountFailures, DefaultAccountFailures)
	return window, [4]int{
		account,
		orDefault(cfg.AddrFailures, DefaultAddrFailures),
		orDefault(cfg.SignupAttempts, DefaultSignupAttempts),
		account,
	}
}

// kindIndex tells which kind a key belongs to: 0 accounts, 1 addresses, 2 signups, 3 anything
// else (limited like an account).
func kindIndex(key string) int {
	switch {
	case strings.HasPrefix(key, AccountPrefix):
		return 0
	case strings.HasPrefix(key, AddrPrefix):
		return 1
	case strings.HasPrefix(key, SignupPrefix):
		return 2
	default:
		return 3
	}
}

func (m *Memory) kindOf(key string) *kind { return m.kinds[kindIndex(key)] }

// Admit takes one token from every key's bucket, or, when any key has none left, takes
// nothing and returns a *domain.ThrottledError. Checking and taking happen under one lock, so
// concurrent attempts cannot all see the last token. RetryAfter is the longest wait among the
// blocked keys, rounded up to whole seconds and at least one second, because Retry-After is
// sent in seconds and a client that honours it must not be refused again. A key named twice
// is taken from once.
func (m *Memory) Admit(_ context.Context, keys ...string) error {
	now := m.clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	var wait time.Duration
	for _, key := range keys {
		k := m.kindOf(key)
		k.pruneIdle(now)
		if b := k.byKey[key]; b != nil {
			wait = max(wait, k.wait(b, now))
		}
	}
	if wait > 0 {
		return &domain.ThrottledError{RetryAfter: roundUpToSecond(wait)}
	}
	for i, key := range keys {
		if slices.Contains(keys[:i], key) {
			continue
		}
		m.kindOf(key).take(key, now)
	}
	return nil
}

// Refund gives one token back to each key's bucket, for an admitted attempt that turned out
// to test nothing or that must not count. A bucket never holds more than its limit.
func (m *Memory) Refund(_ context.Context, keys ...string) {
	now := m.clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, key := range keys {
		if slices.Contains(keys[:i], key) {
			continue
		}
		k := m.kindOf(key)
		if b := k.byKey[key]; b != nil {
			k.refund(b, now)
		}
	}
}

// Reset forgets the keys' attempts: their buckets are full again.
func (m *Memory) Reset(_ context.Context, keys ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, key := range keys {
		k := m.kindOf(key)
		if b := k.byKey[key]; b != nil {
			k.remove(b)
		}
	}
}

// Tracked reports how many keys currently hold attempts, for a metrics gauge.
func (m *Memory) Tracked() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, k := range m.kinds {
		n += len(k.byKey)
	}
	return n
}

func roundUpToSecond(d time.Duration) time.Duration {
	secs := (d + time.Second - 1) / time.Second
	return max(secs, 1) * time.Second
}

// kind holds the buckets of one kind of key. Buckets form a list ordered by their last
// attempt, oldest first, which is both the eviction order when the kind is at its cap and the
// order in which buckets tend to become full and so forgettable.
type kind struct {
	window   time.Duration
	interval time.Duration // refill time of one token: window / limit
	maxKeys  int
	byKey    map[string]*bucket
	oldest   *bucket
	newest   *bucket
}

// bucket is one key's state. full is when the bucket will again hold all its tokens; a bucket
// whose full time has passed carries no information and is dropped.
type bucket struct {
	key        string
	full       time.Time
	prev, next *bucket
}

func newKind(limit int, window time.Duration, maxKeys int) *kind {
	return &kind{
		window:   window,
		interval: max(window/time.Duration(limit), 1),
		maxKeys:  maxKeys,
		byKey:    make(map[string]*bucket),
	}
}

// debt is how far the bucket is from full, as refill time: window means empty. It is capped at
// window so that a clock stepping backwards cannot lengthen a block.
func (k *kind) debt(b *bucket, now time.Time) time.Duration {
	return min(max(b.full.Sub(now), 0), k.window)
}

// wait is how long until the bucket holds one whole token; zero or less means an attempt is
// allowed now. A bucket has a token while its debt is at most window minus one token's worth.
func (k *kind) wait(b *bucket, now time.Time) time.Duration {
	return k.debt(b, now) - (k.window - k.interval)
}

// take adds one token's worth of debt to key's bucket, creating the bucket when needed.
func (k *kind) take(key string, now time.Time) {
	k.pruneIdle(now)
	b := k.byKey[key]
	if b == nil {
		if len(k.byKey) >= k.maxKeys && k.oldest != nil {
			// Losing the oldest bucket forgets attempts early, which an attacker could use
			// only by filling the whole kind within one window; keeping memory bounded matters
			// more. Accounts and addresses are separate kinds, so spraying addresses never
			// evicts an account's bucket.
			k.remove(k.oldest)
		}
		b = &bucket{key: key}
		k.byKey[key] = b
	} else {
		k.unlink(b)
	}
	// Taking a token adds one interval of debt. The debt never exceeds the window (an empty
	// bucket stays empty rather than going further into debt), which is what bounds a lockout.
	b.full = now.Add(min(k.debt(b, now)+k.interval, k.window))
	k.pushNewest(b)
}

// refund removes one token's worth of debt from b; a bucket that is full again is dropped.
// The bucket keeps its place in the eviction order: giving back a token is not a new attempt.
func (k *kind) refund(b *bucket, now time.Time) {
	debt := k.debt(b, now) - k.interval
	if debt <= 0 {
		k.remove(b)
		return
	}
	b.full = now.Add(debt)
}

// pruneIdle drops buckets that have become full, oldest first, stopping at the first one that
// is still refilling. Each bucket is dropped at most once, so the cost is constant per call
// when amortised, and idle keys do not linger until the cap pushes them out.
func (k *kind) pruneIdle(now time.Time) {
	for k.oldest != nil && !k.oldest.full.After(now) {
		k.remove(k.oldest)
	}
}

func (k *kind) remove(b *bucket) {
	k.unlink(b)
	delete(k.byKey, b.key)
}

func (k *kind) unlink(b *bucket) {
	if b.prev != nil {
		b.prev.next = b.next
	} else {
		k.oldest = b.next
	}
	if b.next != nil {
		b.next.prev = b.prev
	} else {
		k.newest = b.prev
	}
	b.prev, b.next = nil, nil
}

func (k *kind) pushNewest(b *bucket) {
	b.prev = k.newest
	if k.newest != nil {
		k.newest.next = b
	} else {
		k.oldest = b
	}
	k.newest = b
}
