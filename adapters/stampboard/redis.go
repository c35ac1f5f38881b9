package stampboard

import (
	"context"
	"errors"
	"hash/maphash"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/acme/postsvc/adapters/redisx"
	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
)

const (
	// keyTTL bounds how long Redis keeps a user's stamps without a write; an expired hash is
	// read once from the database and published again.
	keyTTL = 24 * time.Hour
	// localTTL bounds how long the client-side cache keeps a hash it was not told about; the
	// invalidations are what keep it fresh, this only bounds memory of idle users.
	localTTL = 10 * time.Minute
	// probeEvery is how often an unreachable Redis is tried again.
	probeEvery = time.Second
	// maxPending bounds the publications kept for retry while Redis cannot be reached.
	maxPending = 1 << 20
	// seeded is the hash field that says the hash holds every scope of the user.
	seeded = "_"
)

// publishScript raises each counter of the user's hash to the published value, never lowers
// one, and writes nothing when nothing rises, so a publication of known values invalidates no
// instance's cache. KEYS[1] is the hash, ARGV[1] its TTL in milliseconds, then scope/value
// pairs.
var publishScript = rueidis.NewLuaScript(`
local changed = redis.call('HEXISTS', KEYS[1], '_') == 0
for i = 2, #ARGV, 2 do
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0') or 0
  if tonumber(ARGV[i+1]) > cur then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1])
    changed = true
  end
end
if changed then
  redis.call('HSET', KEYS[1], '_', '1')
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return changed and 1 or 0
`)

// Redis is the board shared by instances through Redis. Reads are served from the client's
// memory (RESP3 CLIENT TRACKING: Redis pushes an invalidation when a key this client read
// changes, and the client drops its whole cache when the connection breaks); a barrier round
// trip before each read makes sure every invalidation sent before the read began has been
// applied (see barrier). While Redis cannot be reached the board vouches for nothing, so
// principals are read from the database; publications that failed are retried, in order,
// before it vouches again.
type Redis struct {
	client  rueidis.Client
	prefix  string
	timeout time.Duration
	health  *redisx.Health

	gen     atomic.Uint64
	down    atomic.Bool
	probing atomic.Bool
	barrier barrier
	// limit bounds the reads' waits (see sharedDeadline); decoded remembers the stamps made
	// of the hashes last read.
	limit   sharedDeadline
	decoded decodeMemo

	mu      sync.Mutex
	pending map[identity.UserID]identity.Stamps

	closed chan struct{}
	once   sync.Once
}

var _ ports.StampBoard = (*Redis)(nil)

// OpenRedis opens the board on its own connection (the one that receives invalidations).
func OpenRedis(cfg config.Redis, health *redisx.Health) (*Redis, error) {
	r := &Redis{
		prefix: cfg.Prefix, timeout: cfg.Timeout, health: health,
		limit:   sharedDeadline{timeout: cfg.Timeout},
		decoded: decodeMemo{seed: maphash.MakeSeed()},
		pending: make(map[identity.UserID]identity.Stamps),
		closed:  make(chan struct{}),
	}
	client, err := redisx.Open(cfg, func(msgs []rueidis.RedisMessage) {
		if msgs == nil {
			// The connection broke (its cache is gone) or the server flushed everything:
			// what was cached against the old state must be read again.
			r.gen.Add(1)
		}
	})
	if err != nil {
		return nil, err
	}
	r.client = client
	r.barrier.send = func(ctx context.Context) error {
		return client.Do(ctx, client.B().Ping().Build()).Error()
	}
	r.barrier.timeout = func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), r.timeout)
	}
	if err := redisx.Ping(context.Background(), client, cfg.Timeout); err != nil {
		r.fail(err)
	}
	return r, nil
}

// Close stops the probe and closes the connection.
func (r *Redis) Close() {
	r.once.Do(func() {
		close(r.closed)
		r.client.Close()
	})
}

// Generation changes when the connection broke, the server flushed, or Redis answered again
// after an outage.
func (r *Redis) Generation() uint64 { return r.gen.Load() }

// Up reports whether the board vouches for what it reads.
func (r *Redis) Up() bool { return !r.down.Load() }

func (r *Redis) key(user identity.UserID) string {
	return r.prefix + "stamps:{" + string(user) + "}"
}

// Read returns the user's stamps from the client-side cache (or Redis, on a local miss),
// after the barrier. It waits at most about the Redis timeout, and no longer than ctx.
func (r *Redis) Read(ctx context.Context, user identity.UserID) (identity.Stamps, bool) {
	if r.down.Load() {
		return "", false
	}
	limit := r.limit.get()
	if err := r.barrier.Wait(ctx, limit); err != nil {
		r.fail(err)
		return "", false
	}
	m, err := r.client.DoCache(limit, r.client.B().Hgetall().Key(r.key(user)).Cache(), localTTL).AsStrMap()
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		r.fail(err)
		return "", false
	}
	if m[seeded] == "" {
		return "", false
	}
	return r.decoded.stamps(user, m)
}

// Publish raises the user's counters in Redis. When Redis cannot be reached the publication
// is kept and retried before the board vouches again.
func (r *Redis) Publish(ctx context.Context, user identity.UserID, stamps identity.Stamps) {
	if r.down.Load() {
		r.keep(user, stamps)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
	defer cancel()
	if err := r.publish(ctx, user, stamps); err != nil {
		r.keep(user, stamps)
		r.fail(err)
	}
}

func (r *Redis) publish(ctx context.Context, user identity.UserID, stamps identity.Stamps) error {
	counters := stamps.Counters()
	args := make([]string, 0, 1+2*len(counters))
	args = append(args, strconv.FormatInt(keyTTL.Milliseconds(), 10))
	for scope, n := range counters {
		args = append(args, scope, strconv.FormatInt(n, 10))
	}
	return publishScript.Exec(ctx, r.client, []string{r.key(user)}, args).Error()
}

// keep remembers a publication for the retry.
func (r *Redis) keep(user identity.UserID, stamps identity.Stamps) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.pending[user]; !ok && len(r.pending) >= maxPending {
		return // see the README: past a million users written during one outage, the rest wait for their keys' TTL
	}
	r.pending[user] = r.pending[user].Merged(stamps)
}

// fail marks the board down and starts the probe that brings it back.
func (r *Redis) fail(err error) {
	if errors.Is(err, context.Canceled) {
		return // the request went away; that says nothing about Redis
	}
	r.health.Report(err)
	r.down.Store(true)
	if r.probing.CompareAndSwap(false, true) {
		go r.probe()
	}
}

// probe pings Redis until it answers, publishes what was kept, and only then lets the board
// vouch again, under a new generation.
func (r *Redis) probe() {
	defer r.probing.Store(false)
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		select {
		case <-r.closed:
			return
		case <-t.C:
		}
		if err := r.recover(); err == nil {
			return
		}
	}
}

func (r *Redis) recover() error {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	if err := r.client.Do(ctx, r.client.B().Ping().Build()).Error(); err != nil {
		return err
	}
	for {
		r.mu.Lock()
		var (
			user   identity.UserID
			stamps identity.Stamps
			found  bool
		)
		for u, s := range r.pending {
			user, stamps, found = u, s, true
			break
		}
		r.mu.Unlock()
		if !found {
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
		err := r.publish(ctx, user, stamps)
		cancel()
		if err != nil {
			return err
		}
		r.mu.Lock()
		if cur := r.pending[user]; cur == stamps {
			delete(r.pending, user)
		}
		r.mu.Unlock()
	}
	// Whatever this instance cached before the outage is read again: other instances'
	// publications during it may have been lost with their connections.
	r.gen.Add(1)
	r.down.Store(false)
	r.health.Report(nil)
	return nil
}
