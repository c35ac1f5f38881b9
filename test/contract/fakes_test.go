package contract_test

import (
	"testing"

	"github.com/acme/postsvc/test/contract"
	"github.com/acme/postsvc/test/fakes"
)

// TestFakes runs the contract against the in-memory fakes that use-case tests rely on, so they
// cannot drift from the real databases.
func TestFakes(t *testing.T) {
	contract.Run(t, func(t *testing.T) contract.Backend {
		s := fakes.NewStore()
		return contract.Backend{Repos: s, UoW: fakes.NewUnitOfWork(s)}
	})
}
