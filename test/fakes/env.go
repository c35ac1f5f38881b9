package fakes

import "time"

// Env bundles one set of fakes wired together, for use-case tests.
type Env struct {
	Store    *Store
	UoW      *UnitOfWork
	Clock    *Clock
	IDs      *IDs
	Hasher   *Hasher
	Tokens   *Tokens
	Cache    *Cache
	Throttle *Throttle
}

// NewEnv returns fresh fakes; the clock starts at 2026-01-02 03:04:05 UTC.
func NewEnv() *Env {
	store := NewStore()
	clock := NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	return &Env{
		Store: store, UoW: NewUnitOfWork(store), Clock: clock, IDs: &IDs{}, Hasher: &Hasher{},
		Tokens: &Tokens{Clock: clock, Lifetime: 15 * time.Minute}, Cache: NewCache(), Throttle: &Throttle{Limit: 5},
	}
}
