package stampboard

import (
	"context"
	"crypto/rand"
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
	// lease is how long an instance stays a member of the board in Redis without renewing;
	// renewEvery is how often it renews while it can publish. An instance that could not
	// publish a write answers it only once its membership has lapsed (see awaitLapse), so at
	// most about lease + the Redis timeout later.
	lease      = 2 * time.Second
	renewEvery = lease / 4
	// lapseMargin covers the drift between this process's clock and Redis's over one lease.
	lapseMargin = 50 * time.Millisecond
)

// publishScript raises each counter of the user's hash to the published value, never lowers
// one, and writes nothing when nothing rises, so a publication of known values invalidates no
// instance's cache. KEYS[1] is the hash and KEYS[2] the time of its last raise; ARGV[1] is the
// hash's TTL in milliseconds, ARGV[2] how long after a raise reads may still be let through
// by a barrier round trip that started before it (see barrier.Wait), in microseconds, then
// scope/value pairs. It returns how many microseconds the publisher must still wait before it
// answers: the whole window after a raise of its own; what is left of the window of the last
// raise when another publisher's raise already holds its values (that publisher's write, or a
// later one, is what made them visible, and may have run a moment ago); 0 otherwise.
var publishScript = rueidis.NewLuaScript(`
local changed = redis.call('HEXISTS', KEYS[1], '_') == 0
for i = 3, #ARGV, 2 do
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0') or 0
  if tonumber(ARGV[i+1]) > cur then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1])
    changed = true
  end
end
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
if changed then
  redis.call('HSET', KEYS[1], '_', '1')
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  redis.call('SET', KEYS[2], string.format('%d', now), 'PX', math.ceil(window / 1000) + 1)
  return window
end
local last = tonumber(redis.call('GET', KEYS[2]) or '')
if not last then
  return 0
end
return math.max(0, last + window - now)
`)

// membershipScript is run by every barrier round trip (without arguments) and by every
// lease renewal (ARGV[1] the member, ARGV[2] the lease and ARGV[3] the keys' TTL, in
// milliseconds). It first removes the members whose lease has lapsed, by the Redis server's
// clock, and moves the epoch (KEYS[2]) when it removed any; a renewal then extends its
// member's lease in the sorted set KEYS[1]. It returns the epoch. A member lapses when it
// stopped renewing because it could not publish a write (or died): every other instance
// sees the epoch move on its next read and reads again from the database whatever it kept.
var membershipScript = rueidis.NewLuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('ZCOUNT', KEYS[1], '-inf', now) > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  redis.call('INCR', KEYS[2])
end
if ARGV[1] then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  redis.call('SET', KEYS[2], '0', 'NX')
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
return tonumber(redis.call('GET', KEYS[2]) or '0')
`)

// Redis is the board shared by instances through Redis. Reads are served from the client's
// memory (RESP3 CLIENT TRACKING: Redis pushes an invalidation when a key this client read
// changes, and the client drops its whole cache when the connection breaks); a barrier round
// trip that started at most barrierFresh before each read, and a publication answered only
// barrierFresh + freshMargin after Redis ran it, make sure every invalidation sent before the
// read began has been applied (see barrier). While Redis cannot be reached the board vouches for nothing, so
// principals are read from the database; publications that failed are retried, in order,
// before it vouches again.
//
// An instance that cannot publish a write (its own link to Redis failed, while the others'
// work) cannot tell the others directly, so every instance is a member of the board with a
// lease in Redis that it renews while it can publish. One that could not publish stops
// renewing and answers the write only after its lease has lapsed; the next read on any other
// instance then removes it, moves the board's epoch, and so the generation there: whatever
// they kept is read again from the database, which has the write.
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

	// member is this instance's name in the membership set; epoch is the board's epoch last
	// seen (see membershipScript). leaseMu serialises renewals with awaitLapse, and leaseEnd
	// is when this member's lease has lapsed at the latest: the end of the last renewal
	// attempt, answered or not (an unanswered one may have run), plus the lease.
	member   string
	members  []string // the membership set and the epoch keys
	epoch    atomic.Int64
	leaseMu  sync.Mutex
	leaseEnd time.Time

	// The cut-off table (see Cutoffs). watched is when (r.mono()) the last successful read
	// of it began, othersCut whether it held a live row of another instance, and seen the
	// heartbeats it held. cutMu guards this instance's own row: whether it is written
	// (cutAnnounced), when it was first written and when its heartbeat last was (r.mono()).
	cutoffs      Cutoffs
	timing       cutoffTiming
	opened       time.Time
	watched      atomic.Int64
	othersCut    atomic.Bool
	watchMu      sync.Mutex
	seen         map[string]seenBeat
	listWarned   bool // failing reads of the table were logged (watchMu)
	cutMu        sync.Mutex
	cutAnnounced bool
	announcedAt  time.Duration
	lastBeat     time.Duration
	beats        int64

	closed chan struct{}
	once   sync.Once
}

var _ ports.StampBoard = (*Redis)(nil)

// OpenRedis opens the board on its own connection (the one that receives invalidations);
// cutoffs is the database table through which instances cut off from Redis say so.
func OpenRedis(cfg config.Redis, health *redisx.Health, cutoffs Cutoffs) (*Redis, error) {
	return openRedis(cfg, health, cutoffs, defaultCutoffTiming)
}

func openRedis(cfg config.Redis, health *redisx.Health, cutoffs Cutoffs, timing cutoffTiming) (*Redis, error) {
	r := &Redis{
		cutoffs: cutoffs, timing: timing, opened: time.Now(), seen: map[string]seenBeat{},
		prefix: cfg.Prefix, timeout: cfg.Timeout, health: health,
		limit:   sharedDeadline{timeout: cfg.Timeout},
		decoded: decodeMemo{seed: maphash.MakeSeed()},
		pending: make(map[identity.UserID]identity.Stamps),
		closed:  make(chan struct{}),
		member:  rand.Text(),
		members: []string{cfg.Prefix + "board:{members}", cfg.Prefix + "board:{members}:epoch"},
	}
	r.epoch.Store(-1)                              // none seen yet
	r.watched.Store(int64(-2 * timing.watchStale)) // not read yet: vouches for nothing
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
		epoch, err := membershipScript.Exec(ctx, client, r.members, nil).AsInt64()
		if err == nil {
			r.seeEpoch(epoch)
		}
		return err
	}
	r.barrier.timeout = func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), r.timeout)
	}
	r.barrier.gap = barrierGap
	r.barrier.fresh = barrierFresh
	if err := r.renew(); err != nil {
		r.fail(err)
	}
	go r.renewals()
	// Read once before the first request: until then the board vouches for nothing.
	r.readCutoffs()
	go r.watchCutoffs()
	return r, nil
}

// Close stops the probe and the renewals, leaves the membership set when nothing is waiting
// to be published (otherwise the lease lapses, so the others read again), and closes the
// connection.
func (r *Redis) Close() {
	r.once.Do(func() {
		close(r.closed)
		r.leaseMu.Lock()
		if !r.down.Load() && !r.hasPending() {
			ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
			_ = r.client.Do(ctx, r.client.B().Zrem().Key(r.members[0]).Member(r.member).Build()).Error()
			cancel()
		}
		r.leaseMu.Unlock()
		r.withdrawCut() // a row left behind stops counting after deadAfter
		r.client.Close()
	})
}

// seeEpoch records the board's epoch from a barrier or a renewal; a change (a member lapsed,
// or the key was lost) moves the generation.
func (r *Redis) seeEpoch(epoch int64) {
	if old := r.epoch.Swap(epoch); old != epoch && old >= 0 {
		r.gen.Add(1)
	}
}

// renewals extends this instance's lease every renewEvery until Close.
func (r *Redis) renewals() {
	r.every(renewEvery, func() bool {
		if err := r.renew(); err != nil {
			r.fail(err)
		}
		return false
	})
}

// every runs f every d until Close, or until f reports that it is done.
func (r *Redis) every(d time.Duration, f func() (done bool)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-r.closed:
			return
		case <-t.C:
		}
		if f() {
			return
		}
	}
}

// renew extends this instance's lease, unless a publication is waiting: then the lease must
// lapse (see awaitLapse).
func (r *Redis) renew() error {
	r.leaseMu.Lock()
	defer r.leaseMu.Unlock()
	if r.hasPending() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), min(r.timeout, renewEvery))
	defer cancel()
	epoch, err := membershipScript.Exec(ctx, r.client, r.members, []string{
		r.member, strconv.FormatInt(lease.Milliseconds(), 10), strconv.FormatInt(keyTTL.Milliseconds(), 10),
	}).AsInt64()
	r.leaseEnd = time.Now().Add(lease)
	if err != nil {
		return err
	}
	r.seeEpoch(epoch)
	return nil
}

// awaitLapse returns once this instance's lease has lapsed: from then on the next read on
// any other instance finds it lapsed and reads again from the database. A write that could
// not be published waits for it before it is answered.
func (r *Redis) awaitLapse() {
	r.leaseMu.Lock() // waits for a renewal in flight, which may extend the lease
	end := r.leaseEnd
	r.leaseMu.Unlock()
	if d := time.Until(end) + lapseMargin; d > 0 {
		time.Sleep(d)
	}
}

func (r *Redis) hasPending() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending) > 0
}

// Generation changes when the connection broke, the server flushed, Redis answered again
// after an outage, or an instance's lease lapsed (the board's epoch moved).
func (r *Redis) Generation() uint64 { return r.gen.Load() }

// ReadStats reports how many reads a fresh barrier round trip let through and how many
// waited for a round trip of their own (see barrier.Wait); reads made while the board was
// down count in neither.
func (r *Redis) ReadStats() (fresh, waited int64) {
	return r.barrier.freshReads.Load(), r.barrier.waitedReads.Load()
}

// Up reports whether the board vouches for what it reads.
func (r *Redis) Up() bool { return !r.down.Load() }

func (r *Redis) key(user identity.UserID) string {
	return r.prefix + "stamps:{" + string(user) + "}"
}

// Read returns the user's stamps from the client-side cache (or Redis, on a local miss),
// after the barrier. It waits at most about the Redis timeout, and no longer than ctx.
func (r *Redis) Read(ctx context.Context, user identity.UserID) (identity.Stamps, bool) {
	if r.down.Load() || !r.cutoffsAllow() {
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
// is kept and retried before the board vouches again, and Publish returns only once this
// instance's lease has lapsed, so that other instances stop serving what the publication
// would have invalidated (at most about lease plus the Redis timeout).
func (r *Redis) Publish(ctx context.Context, user identity.UserID, stamps identity.Stamps) {
	if r.down.Load() && r.keepWhileDown(user, stamps) {
		r.awaitAnswerable()
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
	defer cancel()
	wait, err := r.publish(ctx, user, stamps)
	if err != nil {
		r.keep(user, stamps)
		r.fail(err)
		r.awaitAnswerable()
		return
	}
	// Reads let through by a fresh barrier round trip (see barrier.Wait) began at most
	// barrierFresh after a round trip that may have started before Redis ran the raise that
	// holds these values (this publication's, or another's a moment ago): once the window
	// has passed, every read that begins waits for a round trip that started after it.
	if wait > 0 {
		time.Sleep(wait)
	}
}

// publish runs publishScript and returns how long the publisher must still wait before it
// answers (see publishScript).
func (r *Redis) publish(ctx context.Context, user identity.UserID, stamps identity.Stamps) (time.Duration, error) {
	counters := stamps.Counters()
	args := make([]string, 0, 2+2*len(counters))
	args = append(args, strconv.FormatInt(keyTTL.Milliseconds(), 10),
		strconv.FormatInt((r.barrier.fresh+freshMargin).Microseconds(), 10))
	for scope, n := range counters {
		args = append(args, scope, strconv.FormatInt(n, 10))
	}
	key := r.key(user)
	us, err := publishScript.Exec(ctx, r.client, []string{key, key + ":t"}, args).AsInt64()
	return time.Duration(us) * time.Microsecond, err
}

// keepWhileDown keeps the publication if the board is still down, and reports whether it
// did: the board comes up under the same lock, only with nothing kept.
func (r *Redis) keepWhileDown(user identity.UserID, stamps identity.Stamps) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.down.Load() {
		return false
	}
	r.keepLocked(user, stamps)
	return true
}

// keep remembers a publication for the retry.
func (r *Redis) keep(user identity.UserID, stamps identity.Stamps) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keepLocked(user, stamps)
}

func (r *Redis) keepLocked(user identity.UserID, stamps identity.Stamps) {
	if _, ok := r.pending[user]; !ok && len(r.pending) >= maxPending {
		return // past a million users written during one outage: the lease lapses all the same, so every instance reads them again from the database
	}
	r.pending[user] = r.pending[user].Merged(stamps)
}

// fail marks the board down and starts the probe that brings it back.
func (r *Redis) fail(err error) {
	if errors.Is(err, context.Canceled) {
		return // the request went away; that says nothing about Redis
	}
	r.health.Report(err)
	// Going down moves the generation at once. The client drops its cache and reports it
	// (which moves the generation too) when its connection breaks, but on its own goroutine:
	// a read that failed on the broken connection could otherwise return first, and what was
	// kept would seem still trusted.
	if r.down.CompareAndSwap(false, true) {
		r.gen.Add(1)
	}
	if r.probing.CompareAndSwap(false, true) {
		go r.probe()
	}
}

// probe pings Redis until it answers, publishes what was kept, and only then lets the board
// vouch again, under a new generation.
func (r *Redis) probe() {
	defer r.probing.Store(false)
	r.every(probeEvery, func() bool { return r.recover() == nil })
}

// publishPending publishes what was kept, one user at a time, until nothing is left.
func (r *Redis) publishPending() error {
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
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
		_, err := r.publish(ctx, user, stamps)
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
}

func (r *Redis) recover() error {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	if err := r.client.Do(ctx, r.client.B().Ping().Build()).Error(); err != nil {
		return err
	}
	for {
		if err := r.publishPending(); err != nil {
			return err
		}
		// Back in the membership set before vouching: a publication that fails later must
		// find a lease to let lapse. (It renews nothing while a publication waits.)
		if err := r.renew(); err != nil {
			return err
		}
		// Up again only with nothing left to publish, decided under the lock that Publish
		// keeps its publications under while the board is down.
		r.mu.Lock()
		if len(r.pending) == 0 {
			// Whatever this instance cached before the outage is read again: other
			// instances' publications during it may have been lost with their connections.
			r.gen.Add(1)
			r.down.Store(false)
			r.mu.Unlock()
			break
		}
		r.mu.Unlock()
	}
	r.health.Report(nil)
	r.withdrawCut() // or the heartbeat does it, within beatEvery
	return nil
}
