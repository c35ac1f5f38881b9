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

// Store implements posts.Store. The list's queries, the hot path of a cache miss, and the
// insert run as statements prepared once per connection of the pool
// (gormstore.QueryPrepared, ExecPrepared), on the pool or on a unit of work's transaction.
type Store struct {
	// known holds the authors whose total (post_usage) this process has seen exist (see
	// postRepo.reserve).
	known *knownAuthors
}

var _ posts.Store = (*Store)(nil)

// NewStore returns the posts store on the pool db; its repositories build on the scopes
// handed to Posts.
func NewStore(*gorm.DB) *Store { return &Store{known: &knownAuthors{}} }

// Posts is the post repository on tx.
func (s *Store) Posts(tx ports.Scope) posts.PostRepository {
	db, err := gormstore.DB(tx)
	if err != nil {
		// A fake's scope handed to the real store: a wiring mistake no request can cause.
		panic(fmt.Sprintf("postsgorm: %v", err))
	}
	return postRepo{db: db, known: s.known}
}
