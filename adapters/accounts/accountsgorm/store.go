// Package accountsgorm stores the accounts context (users, login sessions and personal API keys)
// with GORM on MySQL/MariaDB or SQLite. Its tables are created by the shared migrations
// (adapters/gormstore/migrations); its repositories run on the scopes of the gormstore unit
// of work, so they join any transaction, whichever contexts take part in it.
package accountsgorm

import (
	"fmt"

	"gorm.io/gorm"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/ports/accounts"
)

// Store implements accounts.Store.
type Store struct {
	// principal and keyPrincipal are the per-request authentication reads of the two
	// credential schemes (sessions, API keys), prepared once for the pool.
	principal    *gormstore.PreparedQuery
	keyPrincipal *gormstore.PreparedQuery
}

var _ accounts.Store = (*Store)(nil)

// NewStore prepares the accounts repositories of the pool that gormstore.Open returned.
func NewStore(db *gorm.DB) *Store {
	return &Store{
		principal:    gormstore.NewPreparedQuery(db, principalSQL),
		keyPrincipal: gormstore.NewPreparedQuery(db, apiKeyPrincipalSQL),
	}
}

// Users is the user repository on tx.
func (s *Store) Users(tx ports.Scope) accounts.UserRepository {
	return userRepo{db: mustDB(tx)}
}

// Sessions is the session repository on tx; on the pool's scope its Principal runs as a
// prepared statement.
func (s *Store) Sessions(tx ports.Scope) accounts.SessionRepository {
	r := sessionRepo{db: mustDB(tx)}
	if gormstore.IsPool(tx) {
		r.principal = s.principal
	}
	return r
}

// APIKeys is the personal API key repository on tx; on the pool's scope its Principal runs as
// a prepared statement.
func (s *Store) APIKeys(tx ports.Scope) accounts.APIKeyRepository {
	r := apiKeyRepo{db: mustDB(tx)}
	if gormstore.IsPool(tx) {
		r.principal = s.keyPrincipal
	}
	return r
}

// mustDB returns the connection of a gormstore scope. Any other scope is a wiring mistake (a
// fake's scope handed to the real store), which no request can cause: it panics, and the
// recovery middleware turns that into a 500 with its stack in the log.
func mustDB(tx ports.Scope) *gorm.DB {
	db, err := gormstore.DB(tx)
	if err != nil {
		panic(fmt.Sprintf("accountsgorm: %v", err))
	}
	return db
}
