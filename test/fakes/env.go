package fakes

import (
	"context"
	"time"

	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
)

// Env bundles the shared kernel's fakes wired together; each context's tests add their own
// (accountsfake, postsfake) on the same Store.
type Env struct {
	Store    *Store
	Clock    *Clock
	IDs      *IDs
	Throttle *Throttle
	Jobs     *Jobs
}

// NewEnv returns fresh fakes; the clock starts at 2026-01-02 03:04:05 UTC.
func NewEnv() *Env {
	store := NewStore()
	clock := NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	return &Env{Store: store, Clock: clock, IDs: &IDs{}, Throttle: &Throttle{Limit: 5}, Jobs: NewJobs(store, clock)}
}

// NewUser records that a user exists, with a fresh id, for tests of contexts that only need
// their rows to point at one (the accounts context's own tests make real accounts).
func (e *Env) NewUser() identity.UserID {
	id := identity.UserID(e.IDs.NewID())
	_ = Access(e.Store.Pool(), true, func(v *View) error {
		AddIdentity(v, id)
		return nil
	})
	return id
}

// RunJobs runs every job that is due now, of the kinds handlers knows, until none is left, as
// a worker would; it returns how many ran. A handler error fails the test's expectations by
// leaving the job queued (its error is returned).
func (e *Env) RunJobs(ctx context.Context, handlers map[string]func(context.Context, ports.Job) error) (int, error) {
	return e.Jobs.RunDue(ctx, handlers)
}
