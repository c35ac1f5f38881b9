package gormstore

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"github.com/acme/postsvc/ports"
)

// scope hands out repositories bound to one *gorm.DB: the pool for Store, a transaction inside
// UnitOfWork.Do. Binding happens here and only here, so a repository can never mix the two.
type scope struct{ db *gorm.DB }

// StorageScope marks scope as a ports.Scope.
func (scope) StorageScope() {}

// DB returns the connection a scope made by this package is bound to: the transaction inside
// UnitOfWork.Do, the pool for Store. Adapters that store their own tables (the job queue, a
// context's repositories) build on it, so their writes join the caller's transaction.
func DB(s ports.Scope) (*gorm.DB, error) {
	switch v := s.(type) {
	case scope:
		return v.db, nil
	case *Store:
		return v.db, nil
	}
	return nil, fmt.Errorf("gormstore: %T is not a scope of this store", s)
}

func (s scope) Users() ports.UserRepository       { return userRepo(s) }
func (s scope) Posts() ports.PostRepository       { return postRepo(s) }
func (s scope) Sessions() ports.SessionRepository { return sessionRepo{db: s.db} }

// Store is the non-transactional set of repositories: each call runs on its own pooled
// connection and commits by itself. Use it for reads and for single-statement writes; use
// UnitOfWork when several writes must succeed or fail together.
type Store struct {
	scope
	// principal is the per-request authentication read, prepared once for the pool.
	principal *preparedQuery
}

var _ ports.Repositories = (*Store)(nil)

// NewStore binds the repositories to the pool that Open returned.
func NewStore(db *gorm.DB) *Store {
	return &Store{scope: scope{db: db}, principal: &preparedQuery{db: db, query: principalSQL}}
}

// Sessions is the pool's session repository, whose Principal runs as a prepared statement.
func (s *Store) Sessions() ports.SessionRepository {
	return sessionRepo{db: s.db, principal: s.principal}
}

// Ping checks that the database answers, for the readiness probe. The caller bounds it with a
// context deadline; an unreachable database yields an error wrapping domain.ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return mapErr(sqlDB.PingContext(ctx))
}
