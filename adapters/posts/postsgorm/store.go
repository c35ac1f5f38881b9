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

// Store implements posts.Store.
type Store struct {
	version *gormstore.PreparedQuery
}

var _ posts.Store = (*Store)(nil)

// NewStore prepares the posts repository of the pool that gormstore.Open returned.
func NewStore(db *gorm.DB) *Store {
	return &Store{version: gormstore.NewPreparedQuery(db, versionSQL)}
}

// Posts is the post repository on tx; on the pool's scope its Version runs as a prepared
// statement.
func (s *Store) Posts(tx ports.Scope) posts.PostRepository {
	db, err := gormstore.DB(tx)
	if err != nil {
		// A fake's scope handed to the real store: a wiring mistake no request can cause.
		panic(fmt.Sprintf("postsgorm: %v", err))
	}
	r := postRepo{db: db}
	if gormstore.IsPool(tx) {
		r.version = s.version
	}
	return r
}
