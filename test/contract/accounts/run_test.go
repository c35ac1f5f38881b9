package accounts_test

import (
	"os"
	"testing"

	"github.com/acme/postsvc/adapters/accounts/accountsgorm"
	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/test/contract"
	"github.com/acme/postsvc/test/contract/accounts"
	"github.com/acme/postsvc/test/fakes"
	"github.com/acme/postsvc/test/fakes/accountsfake"
	"github.com/acme/postsvc/test/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// TestGormStore runs the accounts contract on every supported database, each test on a fresh,
// migrated database of its own.
func TestGormStore(t *testing.T) {
	for _, backend := range testdb.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			contract.Run(t, accounts.Tests(), func(t *testing.T) accounts.Backend {
				db := backend.Open(t)
				return accounts.Backend{UoW: gormstore.NewUnitOfWork(db), Store: accountsgorm.NewStore(db), Stamps: gormstore.NewStamps(nil)}
			})
		})
	}
}

// TestFakes runs the accounts contract on the in-memory fakes that use-case tests rely on.
func TestFakes(t *testing.T) {
	contract.Run(t, accounts.Tests(), func(t *testing.T) accounts.Backend {
		return accounts.Backend{UoW: fakes.NewStore(), Store: accountsfake.Store{}, Stamps: fakes.Stamps{}}
	})
}
