package gormstore_test

import (
	"context"

	"gorm.io/gorm"

	"github.com/acme/postsvc/adapters/accounts/accountsgorm"
	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/adapters/posts/postsgorm"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/ports/accounts"
	"github.com/acme/postsvc/ports/posts"
)

// stores gives this package's tests the repositories of two contexts on one pool, to exercise
// the unit of work, the error mapping and the outage handling with real tables.
type stores struct {
	db       *gorm.DB
	uow      *gormstore.UnitOfWork
	accounts *accountsgorm.Store
	posts    *postsgorm.Store
}

func newStores(db *gorm.DB) stores {
	return stores{db: db, uow: gormstore.NewUnitOfWork(db), accounts: accountsgorm.NewStore(db), posts: postsgorm.NewStore(db)}
}

// bump increments a user's "posts" stamp in tx, as every post write does.
func (s stores) bump(ctx context.Context, tx ports.Scope, user identity.UserID) error {
	return gormstore.NewStamps(nil).Bump(ctx, tx, user, "posts")
}

// stamp reads a user's "posts" stamp straight from the user's row.
func (s stores) stamp(ctx context.Context, user identity.UserID) (int64, error) {
	var stamps string
	err := s.db.WithContext(ctx).Raw(`SELECT stamps FROM users WHERE id = ?`, string(user)).Scan(&stamps).Error
	return identity.Stamps(stamps).Get("posts"), err
}

func (s stores) in(tx ports.Scope) scoped { return scoped{s: s, tx: tx} }

func (s stores) Users() accounts.UserRepository       { return s.accounts.Users(s.uow.Pool()) }
func (s stores) Sessions() accounts.SessionRepository { return s.accounts.Sessions(s.uow.Pool()) }
func (s stores) Posts() posts.PostRepository          { return s.posts.Posts(s.uow.Pool()) }
func (s stores) Ping(ctx context.Context) error       { return gormstore.NewPinger(s.db).Ping(ctx) }

// scoped is the repositories on one transaction.
type scoped struct {
	s  stores
	tx ports.Scope
}

func (c scoped) Users() accounts.UserRepository       { return c.s.accounts.Users(c.tx) }
func (c scoped) Sessions() accounts.SessionRepository { return c.s.accounts.Sessions(c.tx) }
func (c scoped) Posts() posts.PostRepository          { return c.s.posts.Posts(c.tx) }
