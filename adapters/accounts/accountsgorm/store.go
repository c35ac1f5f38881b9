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

// Store implements accounts.Store. The per-request authentication reads of the two
// credential schemes (sessions, API keys) run as statements prepared once per connection
// (gormstore.QueryRowPrepared).
type Store struct{}

var _ accounts.Store = (*Store)(nil)

// NewStore returns the accounts repositories of the pool that gormstore.Open returned.
func NewStore(*gorm.DB) *Store { return &Store{} }

// Users is the user repository on tx.
func (*Store) Users(tx ports.Scope) accounts.UserRepository {
	return userRepo{db: mustDB(tx)}
}

// Sessions is the session repository on tx.
func (*Store) Sessions(tx ports.Scope) accounts.SessionRepository {
	return sessionRepo{db: mustDB(tx)}
}

// APIKeys is the personal API key repository on tx.
func (*Store) APIKeys(tx ports.Scope) accounts.APIKeyRepository {
	return apiKeyRepo{db: mustDB(tx)}
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
