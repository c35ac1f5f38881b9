package stampboard

import (
	"context"
	"hash/maphash"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/acme/postsvc/domain/identity"
)

// The two helpers below keep a read of the board, which every authenticated request makes,
// free of per-request allocations beyond the client's own.

// sharedDeadline hands every read the same context with a deadline, renewed when less than a
// tenth of the timeout is left, instead of a context and timer of its own per read: a read
// waits between 0.9 and 1 times the timeout at most.
type sharedDeadline struct {
	timeout time.Duration
	cur     atomic.Pointer[deadline]
}

type deadline struct {
	ctx     context.Context
	cancel  context.CancelFunc // kept, not called: the deadline releases the context
	renewAt time.Time
}

func (s *sharedDeadline) get() context.Context {
	now := time.Now()
	if d := s.cur.Load(); d != nil && now.Before(d.renewAt) {
		return d.ctx
	}
	// Reads still in flight may hold the previous context, so it is left to its deadline,
	// which releases it, rather than cancelled here.
	ctx, cancel := context.WithDeadline(context.Background(), now.Add(s.timeout)) //nolint:gosec // G118: see above
	s.cur.Store(&deadline{ctx: ctx, cancel: cancel, renewAt: now.Add(s.timeout - s.timeout/10)})
	return ctx
}

// decodeSlots is how many users' last decoded stamps are kept: a fixed table, so its memory
// does not grow with the users; two users sharing a slot only decode more often.
const decodeSlots = 4096

// decodeMemo remembers, per slot, the last hash decoded and the stamps made of it. A user's
// hash changes only when the user writes, so nearly every read finds its counters unchanged
// and returns the same stamps without building them again.
type decodeMemo struct {
	seed  maphash.Seed
	slots [decodeSlots]atomic.Pointer[decodedStamps]
}

type decodedStamps struct {
	user     identity.UserID
	counters map[string]int64 // read-only once stored
	stamps   identity.Stamps
}

// stamps returns the stamps of the hash m (scope to counter, plus the seeded field) read for
// user, and false when a counter is not a number.
func (d *decodeMemo) stamps(user identity.UserID, m map[string]string) (identity.Stamps, bool) {
	slot := &d.slots[maphash.String(d.seed, string(user))%decodeSlots]
	if prev := slot.Load(); prev != nil && prev.user == user && sameCounters(prev.counters, m) {
		return prev.stamps, true
	}
	counters, ok := decode(m)
	if !ok {
		return "", false
	}
	s := identity.StampsOf(counters)
	slot.Store(&decodedStamps{user: user, counters: counters, stamps: s})
	return s, true
}

// sameCounters reports whether m holds exactly counters (besides the seeded field).
func sameCounters(counters map[string]int64, m map[string]string) bool {
	n := 0
	for scope, v := range m {
		if scope == seeded {
			continue
		}
		c, ok := counters[scope]
		if !ok {
			return false
		}
		if got, err := strconv.ParseInt(v, 10, 64); err != nil || got != c {
			return false
		}
		n++
	}
	return n == len(counters)
}

// decode reads the counters of the hash m.
func decode(m map[string]string) (map[string]int64, bool) {
	counters := make(map[string]int64, len(m))
	for scope, v := range m {
		if scope == seeded {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, false
		}
		counters[scope] = n
	}
	return counters, true
}
