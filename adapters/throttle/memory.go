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
	// else). A tracked key costs on the order of a hundred bytes plus 8 per attempt in its
	// window, so the cap bounds the throttle however many addresses an attacker sprays; in
	// practice the attempts kept are also bounded by what the password hasher admits in one
	// window, since every kept attempt costs a hash.
	DefaultMaxKeys = 100_000
)

// Memory implements ports.AttemptThrottle in process memory. Each instance of the service
// throttles on its own, so behind a load balancer the effective limit is multiplied by the
// number of instances; a shared implementation can replace it behind the same port.
//
// Each key is a sliding window log: the times of the attempts it admitted within the last
// window, oldest first. An attempt is admitted while fewer than limit attempts were admitted in
// the window before it, so no span of one window ever holds more than limit admitted attempts:
// "20 signups per address per 15 minutes" holds for every 15 minutes, not only for windows
// that start at a fixed time (a fixed-window counter admits twice the limit across a window's
// edge) and not only on average (a token bucket admits its burst and then its refill, up to
// twice the limit in one window). A refused attempt is told to wait until the oldest of the
// window's attempts leaves it, so Retry-After is exact: the attempt made then is admitted, if
// nothing else took the slot meanwhile. The price is that a key blocked by a burst stays
// blocked for up to one window after the burst, also for an account's owner when someone else
// made the failures; the window bounds that lockout, refused attempts never extend it, and a
// successful login resets the account's log.
//
// A log holds at most limit times (8 bytes each), and keys are capped per kind (see
// DefaultMaxKeys), so memory is bounded whatever is sprayed at the throttle.
//
// An attempt is recorded when it is admitted, before any password is hashed, under the same
// lock that checked the budget. So however many attempts arrive at once, no more than the
// budget are ever admitted; an attempt that then tests nothing is refunded.
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

// Admit records one attempt for every key, or, when any key already holds its limit of
// attempts within the window, records nothing and returns a *domain.ThrottledError. Checking
// and recording happen under one lock, so concurrent attempts cannot all see the last slot.
// RetryAfter is the longest wait among the blocked keys, rounded up to whole seconds and at
// least one second, because Retry-After is sent in seconds and a client that honours it must
// not be refused again. A key named twice is recorded once.
func (m *Memory) Admit(_ context.Context, keys ...string) error {
	now := m.clock.Now().UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	var wait time.Duration
	for _, key := range keys {
		k := m.kindOf(key)
		k.pruneIdle(now)
		if l := k.byKey[key]; l != nil {
			wait = max(wait, k.wait(l, now))
		}
	}
	if wait > 0 {
		return &domain.ThrottledError{RetryAfter: roundUpToSecond(wait)}
	}
	for i, key := range keys {
		if slices.Contains(keys[:i], key) {
			continue
		}
		m.kindOf(key).record(key, now)
	}
	return nil
}

// Refund forgets one attempt of each key, the newest still in its window, for an admitted
// attempt that turned out to test nothing or that must not count. A key with no attempt left
// is dropped; refunding a key with none is harmless.
func (m *Memory) Refund(_ context.Context, keys ...string) {
	now := m.clock.Now().UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, key := range keys {
		if slices.Contains(keys[:i], key) {
			continue
		}
		k := m.kindOf(key)
		if l := k.byKey[key]; l != nil {
			k.refund(l, now)
		}
	}
}

// Reset forgets every attempt of the keys: their budgets are whole again.
func (m *Memory) Reset(_ context.Context, keys ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, key := range keys {
		k := m.kindOf(key)
		if l := k.byKey[key]; l != nil {
			k.remove(l)
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

// kind holds the logs of one kind of key. Logs form a list ordered by their newest attempt,
// oldest first, which is both the eviction order when the kind is at its cap and the order in
// which logs empty and so become forgettable.
type kind struct {
	limit   int
	window  int64 // nanoseconds
	maxKeys int
	byKey   map[string]*attemptLog
	oldest  *attemptLog
	newest  *attemptLog
}

// attemptLog is one key's state: the times, in Unix nanoseconds, of the attempts it admitted
// within the window, oldest first, at most limit of them. at[head:] are the live ones: an
// attempt leaving the window moves head, and the slice is compacted once half of it is dead,
// so a log of a million attempts (a limit set that high to disable throttling) costs the same
// per attempt as one of ten.
type attemptLog struct {
	key        string
	at         []int64
	head       int
	prev, next *attemptLog
}

// live returns the log's attempts within the window, oldest first.
func (l *attemptLog) live() []int64 { return l.at[l.head:] }

// newest is the time of the log's newest attempt; false when it holds none.
func (l *attemptLog) newest() (int64, bool) {
	if l.head == len(l.at) {
		return 0, false
	}
	return l.at[len(l.at)-1], true
}

func newKind(limit int, window time.Duration, maxKeys int) *kind {
	return &kind{
		limit:   limit,
		window:  max(int64(window), 1),
		maxKeys: maxKeys,
		byKey:   make(map[string]*attemptLog),
	}
}

// prune drops the attempts that have left the window. An attempt dated after now (the clock
// stepped backwards) is taken as made now, so a step back cannot make a block outlast one
// window from the step.
func (k *kind) prune(l *attemptLog, now int64) {
	for i := len(l.at) - 1; i >= l.head && l.at[i] > now; i-- {
		l.at[i] = now
	}
	for l.head < len(l.at) && l.at[l.head] <= now-k.window {
		l.head++
	}
	if l.head > 0 && l.head >= len(l.at)/2 {
		l.at = l.at[:copy(l.at, l.at[l.head:])]
		l.head = 0
	}
}

// wait is how long until the key may make one more attempt; zero or less means now.
func (k *kind) wait(l *attemptLog, now int64) time.Duration {
	k.prune(l, now)
	at := l.live()
	if len(at) < k.limit {
		return 0
	}
	// The attempt that must leave the window first for the count to drop below the limit.
	return time.Duration(at[len(at)-k.limit] + k.window - now)
}

// record adds an attempt at now to key's log, creating the log when needed. The caller has
// checked that the key has room (wait is zero).
func (k *kind) record(key string, now int64) {
	l := k.byKey[key]
	if l == nil {
		if len(k.byKey) >= k.maxKeys && k.oldest != nil {
			// Losing the oldest log forgets attempts early, which an attacker could use only by
			// filling the whole kind within one window; keeping memory bounded matters more.
			// Accounts and addresses are separate kinds, so spraying addresses never evicts an
			// account's log.
			k.remove(k.oldest)
		}
		l = &attemptLog{key: key}
		k.byKey[key] = l
	} else {
		k.unlink(l)
	}
	l.at = append(l.at, now)
	k.pushNewest(l)
}

// refund forgets l's newest attempt in the window; a log left empty is dropped. The log keeps
// its place in the eviction order: giving back an attempt is not a new one.
func (k *kind) refund(l *attemptLog, now int64) {
	k.prune(l, now)
	if len(l.live()) > 0 {
		l.at = l.at[:len(l.at)-1]
	}
	if len(l.live()) == 0 {
		k.remove(l)
	}
}

// pruneIdle drops logs whose newest attempt has left the window, oldest first, stopping at the
// first one that still holds one. Each log is dropped at most once, so the cost is constant per
// call when amortised, and idle keys do not linger until the cap pushes them out.
func (k *kind) pruneIdle(now int64) {
	for k.oldest != nil {
		if newest, ok := k.oldest.newest(); ok && newest > now-k.window {
			return
		}
		k.remove(k.oldest)
	}
}

func (k *kind) remove(l *attemptLog) {
	k.unlink(l)
	delete(k.byKey, l.key)
}

func (k *kind) unlink(l *attemptLog) {
	if l.prev != nil {
		l.prev.next = l.next
	} else {
		k.oldest = l.next
	}
	if l.next != nil {
		l.next.prev = l.prev
	} else {
		k.newest = l.prev
	}
	l.prev, l.next = nil, nil
}

func (k *kind) pushNewest(l *attemptLog) {
	l.prev = k.newest
	if k.newest != nil {
		k.newest.next = l
	} else {
		k.oldest = l
	}
	k.newest = l
}
