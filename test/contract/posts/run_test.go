package posts_test

import (
	"os"
	"testing"
	"time"

	"github.com/acme/postsvc/adapters/accounts/accountsgorm"
	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/adapters/posts/postsgorm"
	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/test/contract"
	"github.com/acme/postsvc/test/contract/posts"
	"github.com/acme/postsvc/test/fakes"
	"github.com/acme/postsvc/test/fakes/postsfake"
	"github.com/acme/postsvc/test/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// TestGormStore runs the posts contract on every supported database, each test on a fresh,
// migrated database of its own. Users are stored through the accounts context's own store,
// as the service does.
func TestGormStore(t *testing.T) {
	for _, backend := range testdb.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			contract.Run(t, posts.Tests(), func(t *testing.T) posts.Backend {
				db := backend.Open(t)
				uow := gormstore.NewUnitOfWork(db)
				users := accountsgorm.NewStore(db).Users(uow.Pool())
				return posts.Backend{UoW: uow, Store: postsgorm.NewStore(db), NewUser: func(t *testing.T) identity.UserID {
					t.Helper()
					id := identity.UserID(contract.NewID(t))
					u, err := user.New(id, contract.MustEmail(t, string(id)+"@x.io"), "hash", "", identity.RoleUser, time.Now())
					contract.NoErr(t, "user.New", err)
					contract.NoErr(t, "add user", users.Add(t.Context(), u))
					return id
				}}
			})
		})
	}
}

// TestFakes runs the posts contract on the in-memory fakes that use-case tests rely on.
func TestFakes(t *testing.T) {
	contract.Run(t, posts.Tests(), func(t *testing.T) posts.Backend {
		env := fakes.NewEnv()
		return posts.Backend{UoW: env.Store, Store: postsfake.Store{}, NewUser: func(*testing.T) identity.UserID { return env.NewUser() }}
	})
}
