package stampboard

import (
	"context"
	"time"
)

// Cutoffs is where an instance that cannot reach Redis says so through the database, which it
// still reaches (gormstore.Cutoffs, the board_cutoffs table): one row per such instance, with
// a heartbeat it raises while it stays cut off.
//
// The membership lease (see Redis) lets an instance that reached Redis once tell the others
// that it can no longer publish: its lease lapses. An instance that has never reached Redis
// since it started holds no lease, so the others would not know it exists. The table covers
// both: every instance reads it every watchEvery and vouches for nothing while it is stale or
// holds a live row of another instance, and an instance that cannot publish a write writes
// its row and answers the write only once every other instance must have read it.
type Cutoffs interface {
	// List returns every row: member → heartbeat.
	List(ctx context.Context) (map[string]int64, error)
	// Beat writes member's row with its heartbeat, creating it if absent.
	Beat(ctx context.Context, member string, beat int64) error
	// Remove deletes member's row if it still holds beat (whatever it holds when beat < 0).
	Remove(ctx context.Context, member string, beat int64) error
}

// cutoffTiming is how the board uses the table; OpenRedis uses defaultCutoffTiming, tests
// shorter ones.
type cutoffTiming struct {
	// watchEvery is how often every instance reads the table; watchStale is how old the start
	// of its last successful read may be while it vouches. A cut-off instance answers a write
	// watchStale plus lapseMargin after its row was written: by then every other instance has
	// either read the row or stopped vouching.
	watchEvery, watchStale time.Duration
	// A cut-off instance raises its heartbeat every beatEvery. A row whose heartbeat has not
	// moved for deadAfter (by the reader's clock) belongs to a process that is gone: it no
	// longer holds the others back, and after forgetAfter they delete it. A cut-off instance
	// whose last heartbeat is older than deadAfter/2 writes one before it answers a write.
	beatEvery, deadAfter, forgetAfter time.Duration
}

var defaultCutoffTiming = cutoffTiming{
	watchEvery: 250 * time.Millisecond, watchStale: time.Second,
	beatEvery: time.Second, deadAfter: 10 * time.Second, forgetAfter: time.Minute,
}

// seenBeat is another instance's heartbeat and when this instance first read it.
type seenBeat struct {
	beat int64
	at   time.Duration // r.mono()
}

// mono is the time since the board opened, on the monotonic clock.
func (r *Redis) mono() time.Duration { return time.Since(r.opened) }

// watchCutoffs reads the table every watchEvery until Close (OpenRedis reads it once first).
func (r *Redis) watchCutoffs() {
	r.every(r.timing.watchEvery, func() bool {
		r.readCutoffs()
		return false
	})
}

// ReadCutoffs reads the cut-off table now, as the board does every watchEvery: the server
// calls it once its migrations have created the table.
func (r *Redis) ReadCutoffs() { r.readCutoffs() }

// readCutoffs reads the table once. A row that appears or goes, or a change between "some
// other instance is cut off" and "none is", moves the generation: whatever was kept before is
// read again. Reads take turns (watchMu guards r.seen).
func (r *Redis) readCutoffs() {
	r.watchMu.Lock()
	defer r.watchMu.Unlock()
	began := r.mono()
	ctx, cancel := context.WithTimeout(context.Background(), r.timing.watchStale)
	rows, err := r.cutoffs.List(ctx)
	cancel()
	if err != nil {
		// The last successful read ages until the board stops vouching; when it has, the
		// failure (the database is unreachable, or the table was never migrated) is logged,
		// once until a read succeeds again.
		// (Not in the board's first second: on a fresh database the table is created by the
		// migrations that run after the board opened.)
		if !r.listWarned && began > r.timing.watchStale && began-time.Duration(r.watched.Load()) > r.timing.watchStale {
			r.listWarned = true
			r.health.Log().Warn("redis board: cannot read the board_cutoffs table, so principals are read from the database until it can (is the database reachable and migrated?)", "err", err)
		}
		return
	}
	if r.listWarned {
		r.health.Log().Info("redis board: reads the board_cutoffs table again")
	}
	r.listWarned = false
	changed := false
	live := 0
	for member, beat := range rows {
		if member == r.member {
			continue
		}
		s, ok := r.seen[member]
		if !ok || s.beat != beat {
			changed = changed || !ok
			s = seenBeat{beat: beat, at: began}
			r.seen[member] = s
		}
		switch age := began - s.at; {
		case age <= r.timing.deadAfter:
			live++
		case age > r.timing.forgetAfter:
			ctx, cancel := context.WithTimeout(context.Background(), r.timing.watchStale)
			_ = r.cutoffs.Remove(ctx, member, beat)
			cancel()
		}
	}
	for member := range r.seen {
		if _, ok := rows[member]; !ok {
			delete(r.seen, member)
			changed = true
		}
	}
	if changed || (live > 0) != r.othersCut.Load() {
		r.gen.Add(1)
	}
	r.othersCut.Store(live > 0)
	r.health.SetCutoffs(live)
	r.watched.Store(int64(began))
}

// cutoffsAllow reports whether the table lets the board vouch: read within watchStale, and no
// other instance cut off. watched is loaded first: readCutoffs stores othersCut before it, so
// a read that began after a row was written is never paired with the verdict of an older one.
func (r *Redis) cutoffsAllow() bool {
	watched := time.Duration(r.watched.Load())
	return r.mono()-watched <= r.timing.watchStale && !r.othersCut.Load()
}

// announceCut writes this instance's row (or a fresh heartbeat, when the last one is old) and
// returns when a write committed before the call may be answered: watchStale plus lapseMargin
// after the row was first written. It returns 0 when the row could not be written; the lease
// is then all that holds the others back.
func (r *Redis) announceCut() time.Duration {
	r.cutMu.Lock()
	defer r.cutMu.Unlock()
	if r.cutAnnounced && r.mono()-r.lastBeat < r.timing.deadAfter/2 {
		return r.announcedAt + r.timing.watchStale + lapseMargin
	}
	began := r.mono()
	if err := r.beat(); err != nil {
		return 0
	}
	r.lastBeat = began
	r.announcedAt = r.mono()
	if !r.cutAnnounced {
		r.cutAnnounced = true
		r.health.Log().Warn("redis: this instance cannot publish its writes; it said so through the database, so the other instances read principals and post lists from the database until it reaches Redis again")
		go r.heartbeat()
	}
	return r.announcedAt + r.timing.watchStale + lapseMargin
}

// beat raises this instance's heartbeat in its row; cutMu is held.
func (r *Redis) beat() error {
	ctx, cancel := context.WithTimeout(context.Background(), r.timing.watchStale)
	defer cancel()
	r.beats++
	return r.cutoffs.Beat(ctx, r.member, r.beats)
}

// heartbeat raises the heartbeat every beatEvery while this instance is cut off, and removes
// its row once it reaches Redis again with nothing left to publish (withdrawCut, which the
// recovery also calls at once).
func (r *Redis) heartbeat() {
	r.every(r.timing.beatEvery, func() bool {
		if r.withdrawCut() {
			return true
		}
		r.cutMu.Lock()
		defer r.cutMu.Unlock()
		if !r.cutAnnounced {
			return true
		}
		began := r.mono()
		if err := r.beat(); err == nil {
			r.lastBeat = began
		}
		return false
	})
}

// withdrawCut removes this instance's row if it wrote one and now reaches Redis with nothing
// left to publish, and reports whether no row of its own is left.
func (r *Redis) withdrawCut() bool {
	r.cutMu.Lock()
	defer r.cutMu.Unlock()
	if !r.cutAnnounced {
		return true
	}
	if r.down.Load() || r.hasPending() {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.timing.watchStale)
	defer cancel()
	if err := r.cutoffs.Remove(ctx, r.member, -1); err != nil {
		return false
	}
	r.cutAnnounced = false
	r.health.Log().Info("redis: this instance publishes its writes again; it withdrew its notice from the database")
	return true
}

// awaitAnswerable waits until a write that could not be published may be answered: this
// instance's lease has lapsed, and its row in the table has been read by every other instance
// that still vouches.
func (r *Redis) awaitAnswerable() {
	until := r.announceCut()
	r.awaitLapse()
	if d := until - r.mono(); until > 0 && d > 0 {
		time.Sleep(d)
	}
}
