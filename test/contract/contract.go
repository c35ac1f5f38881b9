// Package contract is the behavioural specification of the shared kernel's persistence
// ports: the unit of work (one transaction spanning several contexts' repositories) and the
// durable job queue. Each bounded context keeps the specification of its own repositories in
// a sub-package (contract/accounts, contract/posts); all of them run against every
// implementation (SQLite, MySQL, and the in-memory fakes use-case tests rely on), so a fake
// cannot behave differently from the real databases.
//
// The suites see only the ports interfaces and the domain packages, never an implementation.
package contract

import "testing"

// Test is one contract test of a backend of type B; it receives a fresh backend of its own.
type Test[B any] struct {
	Name string
	Run  func(t *testing.T, b B)
}

// Group names a list of tests.
type Group[B any] struct {
	Name  string
	Tests []Test[B]
}

// Run runs every group's tests in parallel. newBackend must return a fresh, empty backend on
// every call; each test calls it once.
func Run[B any](t *testing.T, groups []Group[B], newBackend func(t *testing.T) B) {
	for _, g := range groups {
		t.Run(g.Name, func(t *testing.T) {
			for _, tc := range g.Tests {
				t.Run(tc.Name, func(t *testing.T) {
					t.Parallel()
					tc.Run(t, newBackend(t))
				})
			}
		})
	}
}
