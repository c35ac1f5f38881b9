package contract_test

import (
	"os"
	"testing"

	"github.com/acme/postsvc/adapters/accounts/accountsgorm"
	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/adapters/posts/postsgorm"
	"github.com/acme/postsvc/test/contract"
	"github.com/acme/postsvc/test/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// TestGormStore runs the unit of work contract against the GORM store on every supported
// database, each test on a fresh, migrated database of its own.
func TestGormStore(t *testing.T) {
	for _, backend := range testdb.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			contract.Run(t, contract.UnitOfWorkTests(), func(t *testing.T) contract.Backend {
				db := backend.Open(t)
				return contract.Backend{UoW: gormstore.NewUnitOfWork(db), Accounts: accountsgorm.NewStore(db), Posts: postsgorm.NewStore(db), Stamps: gormstore.NewStamps(nil)}
			})
		})
	}
}
