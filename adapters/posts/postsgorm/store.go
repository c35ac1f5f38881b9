// Package postsgorm stores the posts context (posts and each author's version) with GORM on
// MySQL/MariaDB or SQLite. Its tables are created by the shared migrations
// (adapters/gormstore/migrations); its repository runs on the scopes of the gormstore unit of
// work, so it joins any transaction, whichever contexts take part in it.
package postsgorm

import (
	"fmt"

	"gorm.io/gorm"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/ports/posts"
)

// Store implements posts.Store. The list's queries, the hot path of a cache miss, are
// prepared once per connection of the pool (gormstore.PreparedQuery) and used by the
// repositories on the pool's scope; inside a unit of work they run on its transaction.
type Store struct{ list listQueries }

// listQueries are ListByAuthor's statements.
type listQueries struct {
	heads, headsBefore, texts *gormstore.PreparedQuery
}

var _ posts.Store = (*Store)(nil)

// NewStore returns the posts store on the pool db; its repositories build on the scopes
// handed to Posts.
func NewStore(db *gorm.DB) *Store {
	return &Store{list: listQueries{
		heads:       gormstore.NewPreparedQuery(db, headsSQL),
		headsBefore: gormstore.NewPreparedQuery(db, headsBeforeSQL),
		texts:       gormstore.NewPreparedQuery(db, textsSQL),
	}}
}

// Posts is the post repository on tx.
func (s *Store) Posts(tx ports.Scope) posts.PostRepository {
	db, err := gormstore.DB(tx)
	if err != nil {
		// A fake's scope handed to the real store: a wiring mistake no request can cause.
		panic(fmt.Sprintf("postsgorm: %v", err))
	}
	r := postRepo{db: db}
	if gormstore.IsPool(tx) {
		r.list = &s.list
	}
	return r
}
