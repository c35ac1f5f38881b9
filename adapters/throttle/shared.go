package throttle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/ports"
)

// HealthReporter receives the outcome of every Redis call: nil when Redis answered. The
// composition root passes the *redisx.Health that all Redis adapters share; it is named here
// as an interface because kernel adapters do not import one another (test/arch).
type HealthReporter interface {
	Report(err error)
}

// DefaultRedisTimeout bounds one Redis call when NewShared is given no timeout; it is the
// default of APP_REDIS_TIMEOUT.
const DefaultRedisTimeout = 500 * time.Millisecond

// Shared implements ports.AttemptThrottle in Redis, so that every instance of the service
// draws from one budget per key: N instances behind a load balancer admit the configured
// limits in total, not N times them.
//
// The semantics are Memory's, at the microsecond resolution of Redis's TIME (same limits per
// key prefix, the same sliding window log: at most limit admitted attempts in any span of one
// window, Retry-After until the oldest of them leaves the window, rounded up to whole seconds
// and at least one, a key named twice recorded once, a refund forgetting the newest attempt).
// Each of Admit and Refund is one Lua script over all its keys, and Reset one DEL of all of
// them: Redis runs each atomically, so checking the logs of every key and recording in all of
// them (or in none) is one step however many instances and goroutines call at once.
//
// A log is one Redis list of attempt times in microseconds, oldest first, at most limit long,
// which expires one window after its newest attempt: a key lives at most one window after its
// last attempt, and a log whose attempts were all refunded is deleted. How many keys exist is
// therefore bounded by the attempts actually kept (admitted and not refunded) within one
// window, not by a cap as in Memory.
//
// # Time
//
// The scripts read the time from Redis (TIME), not from the calling instance. Every instance
// then measures every log against one clock: with instance clocks that differ by s, attempts
// recorded by one instance would look s older or newer to another (a fast clock would see
// blocked accounts as free early, a slow one would lengthen blocks), and which instance
// answered would change the answer. Redis's own clock may step too, but it steps for everyone
// at once, and attempts dated in the future are taken as made now, which bounds what a
// backwards step can do. Memory's injected clock is therefore not used for the shared logs.
//
// Tests that move a fake clock build the throttle with UseClockTime, which sends the clock's
// time to the scripts instead. Mixing the two (Redis time shifted by the fake clock's distance
// from the wall clock) does not work: the shift is measured before the call and TIME read
// during it, so "now" would wobble by the call's latency, backwards as well as forwards, and
// attempts at the exact edge of a budget would be admitted or refused by chance.
//
// # Keys
//
// A throttle key is stored as prefix + "attempts:" + the hex SHA-256 of the key, so emails and
// client addresses never appear in clear in Redis (SCAN, MONITOR, a dump or a replica) and
// every key is 64 hex digits long whatever the caller sends. The hash is unsalted: it hides
// keys from a reader, not from someone who can hash candidates (the IPv4 space is small, email
// lists exist), so Redis still holds data about people and is to be protected as such. The
// keys of one call may fall in different hash slots, which is fine on the single Redis the
// service uses and would need a hash tag on Redis Cluster. Versions before the sliding window
// kept token buckets, as strings, under prefix + "throttle:"; the new name keeps the two from
// reading each other's values while both run during a rolling upgrade (each then counts only
// its own attempts), and the old keys expire within a window.
//
// # When Redis fails
//
// Every Redis call is bounded by the timeout, runs without the caller's cancellation (a client
// that goes away must not turn a refund into a lost one or an outage into a report), and its
// outcome is reported to health. When a call fails (refused, stalled, timed out, or any error
// from Redis), the decision is taken by the local Memory instead: Admit never returns anything
// but nil or a *domain.ThrottledError because of Redis, so an outage never turns a login into
// a 5xx.
//
// The local Memory records every attempt this instance admits even while Redis answers (and
// gets the same refunds and resets), so when Redis fails its budgets already hold this
// instance's recent attempts. During an outage each instance throttles the attempts it
// receives with the full limits: N instances admit up to N times each limit in total (a client
// spread over all of them gets N times the budget, one pinned to one instance gets the
// budget), less what each already counted locally. Attempts decided locally are not written
// to Redis during the outage.
//
// Calls that were never sent to Redis (skipped while it was down, or whose connection could
// not be opened) are kept, up to maxMissed of them, and sent before the next call that reaches
// Redis, in their order and before that call's own script (at most replayBatch of them per
// call):
//   - refunds and resets, so that an attempt that tested nothing (a login shed or cancelled
//     during a Redis hiccup) or a success that cleared an account's failures is not counted
//     against the account for a whole window after Redis comes back (one timeout in a flood
//     left the shared budget an attempt short of the local one that way);
//   - the attempts the local budget admitted, recorded then (at Redis's time of sending, so
//     they leave the window later than they would have), so that after a short outage the
//     other instances, and this one once it decides with Redis again, count them.
//
// A call that was sent and then failed or timed out is not kept: Redis may have run it, and
// running a refund twice would give back an attempt that was made (a lost refund errs on the
// side of counting; a lost record, on the side of admitting, as during the outage itself).
//
// After a failure, calls do not all wait for Redis again: for ProbeInterval every call decides
// locally at once, then one call at a time probes Redis while the others still decide locally,
// so a stalled Redis costs at most one timeout per second rather than one per request. As soon
// as a probe gets an answer, every call uses Redis again, without a restart.
type Shared struct {
	client  rueidis.Client
	ns      string // prefix + "attempts:"
	timeout time.Duration
	clock   ports.Clock
	local   *Memory
	health  HealthReporter
	// params holds, per kind of key (kindIndex), the window in microseconds and the limit,
	// as script arguments.
	params [4][2]string
	// clockTime sends clock's time to the scripts instead of letting them read Redis's.
	clockTime bool

	down     atomic.Bool  // the last Redis call of this throttle failed
	failedAt atomic.Int64 // when it failed, in wall-clock nanoseconds
	probing  atomic.Bool  // a call is trying Redis while it is down

	// missed holds the calls Redis has not received, oldest first; missedN is
	// its length, read without the lock on every call. replaying is held while they are sent.
	missedMu  sync.Mutex
	missed    []missedCall
	missedN   atomic.Int64
	replaying sync.Mutex
}

// missedCall is a call that was never sent to Redis: a refund, a reset, or the record of an
// attempt the local budget admitted instead; with its keys as Redis names them and the
// scripts' arguments.
type missedCall struct {
	reset, record bool
	keys, args    []string
}

// maxMissed bounds the calls kept for Redis while it is down (each a few hundred bytes);
// beyond it they are lost there.
const maxMissed = 4096

// ProbeInterval is how long after a failed Redis call the throttle decides locally before it
// tries Redis again. A refused connection fails at once, but a stalled one costs the timeout:
// without a pause every request would wait for it.
const ProbeInterval = time.Second

var _ ports.AttemptThrottle = (*Shared)(nil)

// SharedOption changes how NewShared builds the throttle.
type SharedOption func(*Shared)

// UseClockTime makes the scripts take the time from the injected clock instead of Redis's
// TIME, so that a test's fake clock decides when attempts leave the window. Production leaves it out:
// instances' clocks differ, Redis's is the same for all (see Time in the type's documentation).
func UseClockTime() SharedOption { return func(s *Shared) { s.clockTime = true } }

// NewShared builds the shared throttle on client, whose keys start with prefix (the
// deployment's APP_REDIS_PREFIX). timeout bounds each Redis call (APP_REDIS_TIMEOUT; zero or
// less means DefaultRedisTimeout). cfg gives the limits, resolved exactly as NewMemory resolves
// them. clock is the service's clock: the one the local fallback is built with when local is
// nil, and, with UseClockTime only, the time of the shared logs. local is the fallback,
// which must be built from the same cfg; nil builds one from cfg and clock. health receives the
// outcome of every Redis call (normally the shared *redisx.Health); nil for none.
func NewShared(client rueidis.Client, prefix string, timeout time.Duration, cfg config.Throttle, clock ports.Clock, local *Memory, health HealthReporter, opts ...SharedOption) *Shared {
	if timeout <= 0 {
		timeout = DefaultRedisTimeout
	}
	if local == nil {
		local = NewMemory(cfg, clock)
	}
	if health == nil {
		health = noHealth{}
	}
	s := &Shared{client: client, ns: prefix + "attempts:", timeout: timeout, clock: clock, local: local, health: health}
	window, limits := settings(cfg)
	w := max(window.Microseconds(), 1)
	for i, limit := range limits {
		// In microseconds, the resolution of Redis's TIME.
		s.params[i] = [2]string{strconv.FormatInt(w, 10), strconv.Itoa(limit)}
	}
	for _, opt := range opts {
		opt(s)
	}
	return s
}

// Local returns the fallback throttle, which also holds this instance's own attempts.
func (s *Shared) Local() *Memory { return s.local }

// logLua is the scripts' prelude: now, the current time in microseconds (Redis's, or ARGV[1]
// when it is not empty: UseClockTime), and prune, which drops from a key's log the attempts
// that have left the window and returns how many remain. As in Memory, an attempt dated after
// now (the clock stepped backwards) is taken as made now. Each attempt is popped once, so a
// call costs the same however long the log (a limit set very high, to disable throttling).
const logLua = `
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local nowText = string.format('%.0f', now)
local function prune(key, window)
  local last = redis.call('LINDEX', key, -1)
  if not last then
    return 0
  end
  if tonumber(last) > now then
    local n = redis.call('LLEN', key)
    local j = n - 1
    while j >= 0 and tonumber(redis.call('LINDEX', key, j)) > now do
      redis.call('LSET', key, j, nowText)
      j = j - 1
    end
  end
  while true do
    local first = redis.call('LINDEX', key, 0)
    if not first or tonumber(first) > now - window then
      break
    end
    redis.call('LPOP', key)
  end
  return redis.call('LLEN', key)
end
`

// admitScript records one attempt in every log in KEYS, or in none. ARGV[1] is the time or
// empty (see logLua); ARGV[2i] and ARGV[2i+1] are the window (microseconds) and the limit of
// KEYS[i]. It returns 0 when the attempt is admitted, otherwise how long, in microseconds,
// until every log has room again.
var admitScript = rueidis.NewLuaScript(logLua + `
local wait = 0
for i, key in ipairs(KEYS) do
  local window, limit = tonumber(ARGV[2*i]), tonumber(ARGV[2*i+1])
  local n = prune(key, window)
  if n >= limit then
    local first = tonumber(redis.call('LINDEX', key, n - limit))
    wait = math.max(wait, first + window - now)
  end
end
if wait > 0 then
  return wait
end
for i, key in ipairs(KEYS) do
  redis.call('RPUSH', key, nowText)
  redis.call('PEXPIRE', key, math.ceil(tonumber(ARGV[2*i]) / 1000))
end
return 0
`)

// refundScript forgets the newest attempt in the window of every log in KEYS, with the
// arguments of admitScript. Redis deletes a list left empty.
var refundScript = rueidis.NewLuaScript(logLua + `
for i, key in ipairs(KEYS) do
  if prune(key, tonumber(ARGV[2*i])) > 0 then
    redis.call('RPOP', key)
  end
end
return 0
`)

// recordScript records an attempt that was admitted without Redis in every log in KEYS,
// with the arguments of admitScript: the log keeps at most its limit of attempts, so a log
// that other instances filled meanwhile stays full rather than growing past it.
var recordScript = rueidis.NewLuaScript(logLua + `
for i, key in ipairs(KEYS) do
  local window, limit = tonumber(ARGV[2*i]), tonumber(ARGV[2*i+1])
  prune(key, window)
  redis.call('RPUSH', key, nowText)
  redis.call('LTRIM', key, -limit, -1)
  redis.call('PEXPIRE', key, math.ceil(window / 1000))
end
return 0
`)

// Admit takes one attempt from every key's budget in Redis, or none; see Shared for what
// happens when Redis cannot answer.
func (s *Shared) Admit(ctx context.Context, keys ...string) error {
	keys = distinct(keys)
	if len(keys) == 0 {
		return nil
	}
	var wait int64
	err := s.call(ctx, func(ctx context.Context) error {
		var err error
		wait, err = admitScript.Exec(ctx, s.client, s.redisKeys(keys), s.args(keys)).AsInt64()
		return err
	})
	if err != nil {
		lerr := s.local.Admit(ctx, keys...)
		if lerr == nil && notSent(err) {
			s.keep(missedCall{record: true, keys: s.redisKeys(keys), args: s.args(keys)})
		}
		return lerr
	}
	if wait > 0 {
		return &domain.ThrottledError{RetryAfter: roundUpToSecond(time.Duration(wait) * time.Microsecond)}
	}
	// Redis decides while it answers; the local record is what this instance will decide
	// with if it stops answering. When the local log is already full (its attempts were
	// reset elsewhere, say) it refuses to record more, which is the safe side.
	_ = s.local.Admit(ctx, keys...)
	return nil
}

// Refund gives one attempt back to every key, in Redis and locally.
func (s *Shared) Refund(ctx context.Context, keys ...string) {
	keys = distinct(keys)
	if len(keys) == 0 {
		return
	}
	s.local.Refund(ctx, keys...)
	s.send(ctx, missedCall{keys: s.redisKeys(keys), args: s.args(keys)})
}

// Reset forgets every attempt of keys, in Redis and locally. One DEL of all the keys is
// atomic, so it needs no script.
func (s *Shared) Reset(ctx context.Context, keys ...string) {
	keys = distinct(keys)
	if len(keys) == 0 {
		return
	}
	s.local.Reset(ctx, keys...)
	s.send(ctx, missedCall{reset: true, keys: s.redisKeys(keys)})
}

// send runs a refund or a reset in Redis, and keeps it for later when it was not sent.
func (s *Shared) send(ctx context.Context, m missedCall) {
	if err := s.call(ctx, func(ctx context.Context) error { return s.run(ctx, m) }); notSent(err) {
		s.keep(m)
	}
}

// keep holds m until Redis answers again, unless maxMissed calls are already held.
func (s *Shared) keep(m missedCall) {
	s.missedMu.Lock()
	defer s.missedMu.Unlock()
	if len(s.missed) < maxMissed {
		s.missed = append(s.missed, m)
		s.missedN.Store(int64(len(s.missed)))
	}
}

// run sends one call Redis missed. One DEL of all of a reset's keys is atomic, so it needs
// no script.
func (s *Shared) run(ctx context.Context, m missedCall) error {
	switch {
	case m.reset:
		return s.client.Do(ctx, s.client.B().Del().Key(m.keys...).Build()).Error()
	case m.record:
		return recordScript.Exec(ctx, s.client, m.keys, m.args).Error()
	default:
		return refundScript.Exec(ctx, s.client, m.keys, m.args).Error()
	}
}

// errNotSent marks a Redis call that was not sent: skipped because Redis is down and another
// call is probing it, or held back because what Redis missed could not be sent first.
var errNotSent = errors.New("throttle: not sent to redis")

// errSkipped stands for a Redis call not made because Redis is down and another call is
// already probing it.
var errSkipped = fmt.Errorf("%w: redis is down and another call is probing it", errNotSent)

// notSent reports whether err says that Redis never received the call: a call skipped or held
// back, or a connection that could not be opened. Any other failure may have reached Redis.
func notSent(err error) bool {
	var op *net.OpError
	return errors.Is(err, errNotSent) || errors.As(err, &op) && op.Op == "dial"
}

// call runs one Redis call within the timeout, records its outcome, and returns its error.
// While Redis is down, only one call at a time tries it, and not before ProbeInterval has
// passed since the last failure; the others return errSkipped at once without reporting
// anything. The calls Redis missed are sent first, within the same timeout; if
// they cannot all be, the call is not sent either.
func (s *Shared) call(ctx context.Context, do func(context.Context) error) error {
	if s.down.Load() {
		if time.Since(time.Unix(0, s.failedAt.Load())) < ProbeInterval || !s.probing.CompareAndSwap(false, true) {
			return errSkipped
		}
		defer s.probing.Store(false)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	var err error
	if s.missedN.Load() > 0 {
		if err = s.replay(ctx); err != nil {
			err = fmt.Errorf("%w: sending the calls redis missed: %w", errNotSent, err)
		}
	}
	if err == nil {
		err = do(ctx)
	}
	if err != nil {
		s.failedAt.Store(time.Now().UnixNano())
	}
	s.down.Store(err != nil)
	s.health.Report(err)
	return err
}

// replayBatch is how many missed calls one call sends before its own, one round trip each:
// a queue of maxMissed drains over that many calls instead of making one of them wait for
// all (and time out).
const replayBatch = 64

// replay sends the oldest replayBatch calls Redis missed, one at a time. Calls that arrive
// meanwhile wait for it, so that none is decided before them. What could not be sent is kept,
// ahead of what was missed meanwhile; a call that failed after it was sent is dropped (see
// "When Redis fails").
func (s *Shared) replay(ctx context.Context) error {
	s.replaying.Lock()
	defer s.replaying.Unlock()
	s.missedMu.Lock()
	todo := s.missed[:min(len(s.missed), replayBatch)]
	s.missed = s.missed[len(todo):]
	s.missedMu.Unlock()
	var err error
	sent := 0
	for sent < len(todo) {
		if err = s.run(ctx, todo[sent]); err != nil {
			if !notSent(err) {
				sent++ // it may have reached Redis: not sent again
			}
			break
		}
		sent++
	}
	s.missedMu.Lock()
	s.missed = slices.Concat(todo[sent:], s.missed)
	if len(s.missed) > maxMissed {
		s.missed = s.missed[:maxMissed]
	}
	s.missedN.Store(int64(len(s.missed)))
	s.missedMu.Unlock()
	return err
}

// redisKeys names keys' logs in Redis; see Keys in the type's documentation.
func (s *Shared) redisKeys(keys []string) []string {
	out := make([]string, len(keys))
	for i, key := range keys {
		sum := sha256.Sum256([]byte(key))
		out[i] = s.ns + hex.EncodeToString(sum[:])
	}
	return out
}

// args are the scripts' arguments for keys: the time (empty for Redis's), then each key's
// window and limit.
func (s *Shared) args(keys []string) []string {
	args := make([]string, 1, 1+2*len(keys))
	if s.clockTime {
		args[0] = strconv.FormatInt(s.clock.Now().UnixMicro(), 10)
	}
	for _, key := range keys {
		p := s.params[kindIndex(key)]
		args = append(args, p[0], p[1])
	}
	return args
}

// distinct returns keys without repeats, in their first order; keys itself when it has none.
func distinct(keys []string) []string {
	for i := range keys {
		if slices.Contains(keys[:i], keys[i]) {
			out := make([]string, 0, len(keys))
			for _, k := range keys {
				if !slices.Contains(out, k) {
					out = append(out, k)
				}
			}
			return out
		}
	}
	return keys
}

type noHealth struct{}

func (noHealth) Report(error) {}
