// Package stampboard implements ports.StampBoard: where instances publish users' committed
// stamps so that principals can be served from process memory. Redis shares the board between
// instances (with server-assisted client-side caching, so a read is a local map lookup); Local
// keeps it in the process when the process is the only one (SQLite). Several instances without
// Redis have no board (nil): every request reads the database, which is correct for any number
// of instances.
package stampboard

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
)

// DefaultLocalUsers bounds the users a Local board holds; past it the board starts again
// empty (every user is then read once from the database), so memory stays bounded whatever
// the number of users.
const DefaultLocalUsers = 200_000

// Local is the board of a process that is alone on its database (SQLite, whose file lock
// keeps a second server out): every write goes through this process, so publishing in
// memory is enough.
type Local struct {
	mu    sync.RWMutex
	m     map[identity.UserID]identity.Stamps
	max   int
	gen   atomic.Uint64
	reset atomic.Int64
}

var _ ports.StampBoard = (*Local)(nil)

// NewLocal returns an empty board holding at most maxUsers users (DefaultLocalUsers when 0).
func NewLocal(maxUsers int) *Local {
	if maxUsers <= 0 {
		maxUsers = DefaultLocalUsers
	}
	return &Local{m: make(map[identity.UserID]identity.Stamps), max: maxUsers}
}

// Read returns the user's published stamps.
func (l *Local) Read(_ context.Context, user identity.UserID) (identity.Stamps, bool) {
	l.mu.RLock()
	s, ok := l.m[user]
	l.mu.RUnlock()
	return s, ok
}

// Publish merges stamps into the user's, each counter moving only forward.
func (l *Local) Publish(_ context.Context, user identity.UserID, stamps identity.Stamps) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur, ok := l.m[user]
	if !ok && len(l.m) >= l.max {
		// Starting again empty forgets nothing that matters: an unknown user is read from
		// the database. The generation tells the principal caches to drop what they hold.
		l.m = make(map[identity.UserID]identity.Stamps)
		l.gen.Add(1)
		l.reset.Add(1)
	}
	l.m[user] = cur.Merged(stamps)
}

// Generation changes when the board starts again empty.
func (l *Local) Generation() uint64 { return l.gen.Load() }
