// Package contract is the one behavioural specification of the persistence ports. Run checks an
// implementation of ports.Repositories and ports.UnitOfWork against it; the GORM store runs it
// on SQLite and MySQL (gormstore_test.go), and an in-memory fake can run it too, so a use-case
// test cannot pass against a fake that behaves differently from the real databases.
//
// The suite sees only the ports interfaces and the domain packages, never an implementation.
package contract

import (
	"testing"

	"github.com/acme/postsvc/ports"
)

// Backend is one implementation under test: repositories outside any transaction and the unit
// of work over the same storage.
type Backend struct {
	Repos ports.Repositories
	UoW   ports.UnitOfWork
}

// Run runs the whole suite. newBackend must return a fresh, empty backend on every call; each
// test calls it once, and the tests run in parallel.
func Run(t *testing.T, newBackend func(t *testing.T) Backend) {
	groups := []struct {
		name  string
		tests []namedTest
	}{
		{"users", userTests()},
		{"posts", postTests()},
		{"sessions", sessionTests()},
		{"uow", unitOfWorkTests()},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t, newBackend(t))
				})
			}
		})
	}
}

// namedTest is one contract test; it receives a fresh backend of its own.
type namedTest struct {
	name string
	run  func(t *testing.T, b Backend)
}
