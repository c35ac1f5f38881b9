package media_test

import (
	"os"
	"testing"

	"github.com/acme/postsvc/adapters/accounts/accountsgorm"
	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/adapters/media/mediagorm"
	"github.com/acme/postsvc/test/contract"
	"github.com/acme/postsvc/test/contract/media"
	"github.com/acme/postsvc/test/fakes"
	"github.com/acme/postsvc/test/fakes/accountsfake"
	"github.com/acme/postsvc/test/fakes/mediafake"
	"github.com/acme/postsvc/test/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// TestGormStore runs the media contract on every supported database, each test on a fresh,
// migrated database of its own.
func TestGormStore(t *testing.T) {
	for _, backend := range testdb.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			contract.Run(t, media.Tests(), func(t *testing.T) media.Backend {
				db := backend.Open(t)
				uow := gormstore.NewUnitOfWork(db)
				newUser, deleteUser := contract.Users(accountsgorm.NewStore(db).Users(uow.Pool()))
				return media.Backend{UoW: uow, Store: mediagorm.NewStore(), NewUser: newUser, DeleteUser: deleteUser}
			})
		})
	}
}

// TestFakes runs the media contract on the in-memory fakes that use-case tests rely on.
func TestFakes(t *testing.T) {
	contract.Run(t, media.Tests(), func(t *testing.T) media.Backend {
		env := fakes.NewEnv()
		newUser, deleteUser := contract.Users(accountsfake.Store{}.Users(env.Store.Pool()))
		return media.Backend{UoW: env.Store, Store: mediafake.Store{}, NewUser: newUser, DeleteUser: deleteUser}
	})
}
