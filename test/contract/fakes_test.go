package contract_test

import (
	"testing"

	"github.com/acme/postsvc/test/contract"
	"github.com/acme/postsvc/test/fakes"
	"github.com/acme/postsvc/test/fakes/accountsfake"
	"github.com/acme/postsvc/test/fakes/postsfake"
)

// TestFakes runs the unit of work contract against the in-memory fakes that use-case tests
// rely on, so they cannot drift from the real databases.
func TestFakes(t *testing.T) {
	contract.Run(t, contract.UnitOfWorkTests(), func(t *testing.T) contract.Backend {
		return contract.Backend{UoW: fakes.NewStore(), Accounts: accountsfake.Store{}, Posts: postsfake.Store{}, Stamps: fakes.Stamps{}}
	})
}
