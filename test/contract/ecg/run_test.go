package ecg_test

import (
	"os"
	"testing"

	"github.com/acme/postsvc/adapters/accounts/accountsgorm"
	"github.com/acme/postsvc/adapters/ecg/ecggorm"
	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/test/contract"
	"github.com/acme/postsvc/test/contract/ecg"
	"github.com/acme/postsvc/test/fakes"
	"github.com/acme/postsvc/test/fakes/accountsfake"
	"github.com/acme/postsvc/test/fakes/ecgfake"
	"github.com/acme/postsvc/test/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// TestGormStore runs the ECG contract on every supported database, each test on a fresh,
// migrated database of its own.
func TestGormStore(t *testing.T) {
	for _, backend := range testdb.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			contract.Run(t, ecg.Tests(), func(t *testing.T) ecg.Backend {
				db := backend.Open(t)
				uow := gormstore.NewUnitOfWork(db)
				newUser, deleteUser := contract.Users(accountsgorm.NewStore(db).Users(uow.Pool()))
				return ecg.Backend{UoW: uow, Store: ecggorm.NewStore(), NewUser: newUser, DeleteUser: deleteUser}
			})
		})
	}
}

// TestFakes runs the ECG contract on the in-memory fakes that use-case tests rely on.
func TestFakes(t *testing.T) {
	contract.Run(t, ecg.Tests(), func(t *testing.T) ecg.Backend {
		env := fakes.NewEnv()
		newUser, deleteUser := contract.Users(accountsfake.Store{}.Users(env.Store.Pool()))
		return ecg.Backend{UoW: env.Store, Store: ecgfake.Store{}, NewUser: newUser, DeleteUser: deleteUser}
	})
}
