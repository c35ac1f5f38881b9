package media_test

import (
	"os"
	"testing"
	"time"

	"github.com/acme/postsvc/adapters/accounts/accountsgorm"
	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/adapters/media/mediagorm"
	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports/accounts"
	"github.com/acme/postsvc/test/contract"
	"github.com/acme/postsvc/test/contract/media"
	"github.com/acme/postsvc/test/fakes"
	"github.com/acme/postsvc/test/fakes/accountsfake"
	"github.com/acme/postsvc/test/fakes/mediafake"
	"github.com/acme/postsvc/test/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// users makes and deletes accounts through the accounts context's own repository, as the
// service does: the media context only sees their ids.
func users(repo accounts.UserRepository) (func(t *testing.T) identity.UserID, func(t *testing.T, id identity.UserID)) {
	add := func(t *testing.T) identity.UserID {
		t.Helper()
		id := identity.UserID(contract.NewID(t))
		u, err := user.New(id, contract.MustEmail(t, string(id)+"@x.io"), "hash", "", identity.RoleUser, time.Now())
		contract.NoErr(t, "user.New", err)
		contract.NoErr(t, "add user", repo.Add(t.Context(), u))
		return id
	}
	del := func(t *testing.T, id identity.UserID) {
		t.Helper()
		contract.NoErr(t, "delete user", repo.Delete(t.Context(), id))
	}
	return add, del
}

// TestGormStore runs the media contract on every supported database, each test on a fresh,
// migrated database of its own.
func TestGormStore(t *testing.T) {
	for _, backend := range testdb.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			contract.Run(t, media.Tests(), func(t *testing.T) media.Backend {
				db := backend.Open(t)
				uow := gormstore.NewUnitOfWork(db)
				newUser, deleteUser := users(accountsgorm.NewStore(db).Users(uow.Pool()))
				return media.Backend{UoW: uow, Store: mediagorm.NewStore(), NewUser: newUser, DeleteUser: deleteUser}
			})
		})
	}
}

// TestFakes runs the media contract on the in-memory fakes that use-case tests rely on.
func TestFakes(t *testing.T) {
	contract.Run(t, media.Tests(), func(t *testing.T) media.Backend {
		env := fakes.NewEnv()
		newUser, deleteUser := users(accountsfake.Store{}.Users(env.Store.Pool()))
		return media.Backend{UoW: env.Store, Store: mediafake.Store{}, NewUser: newUser, DeleteUser: deleteUser}
	})
}
