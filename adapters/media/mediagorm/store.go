// Package mediagorm stores the media context's image rows and their search documents with
// GORM on MySQL/MariaDB or SQLite. Its table is created by the shared migrations
// (adapters/gormstore/migrations, 00007_media.sql, which explains the schema and the search
// index of each dialect); its repository runs on the scopes of the gormstore unit of work, so
// it joins any transaction, whichever contexts take part in it.
package mediagorm

import (
	"fmt"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/ports"
	mediaport "github.com/acme/postsvc/ports/media"
)

// Store implements media.Store (ports/media).
type Store struct{}

var _ mediaport.Store = Store{}

// NewStore returns the media store; its repositories build on the scopes handed to Images.
func NewStore() Store { return Store{} }

// Images is the image repository on tx. Every write is one statement (an upload's images are
// one INSERT), so on the pool's scope each is all or nothing by itself, or runs in a
// transaction of its own (an Add of more images than one INSERT takes); LockOwner locks only
// inside a unit of work's transaction.
func (Store) Images(tx ports.Scope) mediaport.Repository {
	db, err := gormstore.DB(tx)
	if err != nil {
		// A fake's scope handed to the real store: a wiring mistake no request can cause.
		panic(fmt.Sprintf("mediagorm: %v", err))
	}
	return repo{db: db, pool: gormstore.IsPool(tx)}
}
