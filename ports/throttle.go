package ports

import "context"

// AttemptThrottle limits attempts that cost a password hash: logins per account and per
// client address, signups per client address. Keys name what is throttled
// ("account:<email>", "addr:<ip>", "signup:<ip>"); an implementation may keep its state in
// memory or share it.
//
// An attempt counts from the moment it is admitted, before any hashing: checking the budget
// and taking from it are one step, so however many attempts arrive at once, no more than the
// budget are admitted.
type AttemptThrottle interface {
	// Admit takes one attempt from every key's budget, or, when any of them has none left,
	// takes nothing and returns a *domain.ThrottledError.
	Admit(ctx context.Context, keys ...string) error
	// Refund gives one admitted attempt back to every key, for an attempt that must not
	// count: it tested no password (it was shed, cancelled, or the database could not be
	// reached), or it succeeded where only failures count.
	Refund(ctx context.Context, keys ...string)
	// Reset forgets every attempt of keys: their budgets are full again.
	Reset(ctx context.Context, keys ...string)
}
