// Package argon2id hashes passwords with Argon2id (RFC 9106) and stores them as PHC strings,
// so that each hash carries the parameters it was made with and the cost can be raised later
// without invalidating existing accounts.
package argon2id

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/acme/postsvc/ports/accounts"

	"golang.org/x/crypto/argon2"

	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/domain/accounts/user"
)

// OWASP's recommended Argon2id configuration (19 MiB, two passes, one lane), used when a
// setting is left at zero, and the slot and queue sizes used when none are configured. The
// queue holds four slots' worth of checks, so a queued check starts within about four hash
// times; one client may queue as many as there are slots. A client may hold half the slots
// (at least one) unless configured otherwise.
const (
	DefaultMemoryKiB          uint32 = 19456
	DefaultIterations         uint32 = 2
	DefaultParallelism        uint8  = 1
	DefaultMaxConcurrent             = 4
	DefaultMaxQueued                 = 4 * DefaultMaxConcurrent
	DefaultMaxQueuedPerClient        = DefaultMaxConcurrent
)

// Sizes of what Hash generates. Verify accepts other sizes within the bounds in phc.go, so a
// future change of these does not lock anybody out.
const (
	saltLen = 16
	keyLen  = 32
)

// ErrMalformedHash says a stored hash is not a PHC string this package can verify. It is an
// error, never a "wrong password", because it means the stored data is broken.
var ErrMalformedHash = errors.New("argon2id: malformed password hash")

// Hasher implements accounts.PasswordHasher. Argon2id is memory-hard: each run holds
// Params.MemoryKiB of memory for tens of milliseconds, so unbounded concurrency would let a
// burst of logins exhaust memory. A gate (gate.go) caps the runs in flight, shares the slots
// fairly between clients and bounds the queue: a check that could not start soon is refused
// at once with an error wrapping domain.ErrOverloaded, and a queued caller leaves when its
// context ends.
type Hasher struct {
	params   params
	gate     *gate
	inFlight atomic.Int64
	// derive computes the key. It is argon2.IDKey in production; tests in this package replace
	// it to observe how many runs overlap.
	derive func(password, salt []byte, p params, keyLen uint32) []byte
}

var _ accounts.PasswordHasher = (*Hasher)(nil)

// NewHasher builds a hasher from the auth settings. Zero settings fall back to the OWASP
// defaults so that a partially filled config (in tests or tools) still hashes safely; values
// beyond the bounds Verify enforces are clamped to them.
func NewHasher(cfg config.Auth) *Hasher {
	p := params{memory: cfg.Argon2MemoryKiB, iterations: cfg.Argon2Iterations, parallelism: cfg.Argon2Parallelism}
	if p.memory == 0 {
		p.memory = DefaultMemoryKiB
	}
	if p.iterations == 0 {
		p.iterations = DefaultIterations
	}
	if p.parallelism == 0 {
		p.parallelism = DefaultParallelism
	}
	// Keep the configured cost inside what Verify accepts, so every hash this process writes
	// can be read back; Argon2 itself needs at least 8 KiB per lane.
	p.memory = max(p.memory, 8*uint32(p.parallelism))
	p.memory = min(p.memory, maxMemoryKiB)
	p.iterations = min(p.iterations, maxIterations)
	orDefault := func(v, def int) int {
		if v <= 0 {
			return def
		}
		return v
	}
	slots := orDefault(cfg.MaxConcurrentHashes, DefaultMaxConcurrent)
	g := newGate(slots, orDefault(cfg.MaxHashesPerClient, max(slots/2, 1)),
		orDefault(cfg.MaxQueuedHashes, DefaultMaxQueued),
		orDefault(cfg.MaxQueuedPerClient, DefaultMaxQueuedPerClient))
	return &Hasher{params: p, gate: g, derive: idKey}
}

func idKey(password, salt []byte, p params, keyLen uint32) []byte {
	return argon2.IDKey(password, salt, p.iterations, p.memory, p.parallelism, keyLen)
}

// InFlight reports how many Argon2id runs are executing right now (not counting callers
// waiting for a slot). It is meant for a metrics gauge.
func (h *Hasher) InFlight() int64 { return h.inFlight.Load() }

// Queued reports how many password checks are waiting for a slot, for a metrics gauge.
func (h *Hasher) Queued() int64 { return h.gate.waiting() }

// Shed reports how many password checks have been refused as overloaded since start, for a
// metrics counter.
func (h *Hasher) Shed() int64 { return h.gate.shed.Load() }

// Hash derives a new PHC-encoded hash of plain with a fresh random salt, in a slot shared
// fairly with client's. The whole password is hashed, whatever its length; limiting the length
// is the domain's policy, not this adapter's.
func (h *Hasher) Hash(ctx context.Context, client accounts.ClientKey, plain string) (user.PasswordHash, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("argon2id: reading salt: %w", err)
	}
	key, err := h.run(ctx, client, []byte(plain), salt, h.params, keyLen)
	if err != nil {
		return "", err
	}
	return user.PasswordHash(encode(h.params, salt, key)), nil
}

// Verify reports whether plain matches hash, using the parameters stored in hash rather than
// the configured ones. A hash that cannot be parsed is ErrMalformedHash, and nothing is
// computed for it.
func (h *Hasher) Verify(ctx context.Context, client accounts.ClientKey, hash user.PasswordHash, plain string) (bool, error) {
	d, err := decode(string(hash))
	if err != nil {
		return false, err
	}
	key, err := h.run(ctx, client, []byte(plain), d.salt, d.params, d.keyLen())
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(key, d.key) == 1, nil
}

// Reserve implements accounts.PasswordHasher: it gives client's next check its place in the
// gate now (a slot, or a place in the queue) or refuses it at once, and returns the function
// that gives the place back if no check took it.
func (h *Hasher) Reserve(ctx context.Context, client accounts.ClientKey) (func(), error) {
	t, err := h.gate.hold(ctx, client)
	if err != nil {
		return func() {}, fmt.Errorf("argon2id: %w", err)
	}
	return func() { h.gate.unhold(t) }, nil
}

// NeedsRehash reports whether hash was made with parameters other than the configured ones,
// so that a caller who has just verified the password can store a fresh hash. A malformed hash
// needs one too.
func (h *Hasher) NeedsRehash(hash user.PasswordHash) bool {
	d, err := decode(string(hash))
	return err != nil || d.params != h.params || len(d.salt) != saltLen || len(d.key) != keyLen
}

// run waits for a slot of client's share, in a place Reserve held for client if there is one,
// and derives the key. A caller whose context ends while queued gets the context's error,
// and a caller shed by the gate an error wrapping domain.ErrOverloaded; neither starts the
// expensive work.
func (h *Hasher) run(ctx context.Context, client accounts.ClientKey, password, salt []byte, p params, keyLen uint32) ([]byte, error) {
	t := h.gate.take(client)
	if t == nil {
		var err error
		if t, err = h.gate.enter(ctx, client, false); err != nil {
			return nil, fmt.Errorf("argon2id: waiting for a hashing slot: %w", err)
		}
	}
	c, err := h.gate.wait(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("argon2id: waiting for a hashing slot: %w", err)
	}
	defer h.gate.release(c)
	h.inFlight.Add(1)
	defer h.inFlight.Add(-1)
	start := time.Now()
	key := h.derive(password, salt, p, keyLen)
	h.gate.observe(time.Since(start))
	return key, nil
}
