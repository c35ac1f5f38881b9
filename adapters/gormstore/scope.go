package gormstore

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"github.com/acme/postsvc/ports"
)

// scope is a ports.Scope bound to one *gorm.DB: the pool, or a transaction inside
// UnitOfWork.Do. Binding happens here and only here, so a repository built on a scope can
// never mix the two.
type scope struct {
	db   *gorm.DB
	pool bool
	// committed collects what must run once the transaction has committed (nil on the
	// pool's scope, where every statement commits by itself).
	committed *[]func()
}

// StorageScope marks scope as a ports.Scope.
func (scope) StorageScope() {}

// DB returns the connection a scope made by this package is bound to: the transaction inside
// UnitOfWork.Do, or the pool. Each context's repositories (adapters/<context>/<context>gorm)
// and the job queue build on it, so their writes join the caller's transaction.
func DB(s ports.Scope) (*gorm.DB, error) {
	if v, ok := s.(scope); ok {
		return v.db, nil
	}
	return nil, fmt.Errorf("gormstore: %T is not a scope of this store", s)
}

// AfterCommit runs f once s's transaction has committed, before the unit of work returns,
// and not at all if it rolls back; on the pool's scope it runs f at once. It is for effects
// outside the database that must follow a commit, such as publishing the stamps it bumped.
func AfterCommit(s ports.Scope, f func()) error {
	v, ok := s.(scope)
	if !ok {
		return fmt.Errorf("gormstore: %T is not a scope of this store", s)
	}
	if v.committed == nil {
		f()
		return nil
	}
	*v.committed = append(*v.committed, f)
	return nil
}

// IsPool reports whether s is the pool's scope rather than a transaction: there a repository
// method that writes several statements opens its own transaction to stay all or nothing.
func IsPool(s ports.Scope) bool {
	v, ok := s.(scope)
	return ok && v.pool
}

// Pinger checks that the database answers, for the readiness probe.
type Pinger struct{ db *gorm.DB }

// NewPinger binds the probe to the pool that Open returned.
func NewPinger(db *gorm.DB) *Pinger { return &Pinger{db: db} }

// Ping checks that the database answers. The caller bounds it with a context deadline; an
// unreachable database yields an error wrapping domain.ErrUnavailable.
func (p *Pinger) Ping(ctx context.Context) error {
	sqlDB, err := p.db.DB()
	if err != nil {
		return err
	}
	return MapErr(sqlDB.PingContext(ctx))
}

// IsMySQL reports whether db talks to MySQL or MariaDB rather than SQLite, for the few
// statements the dialects spell differently (row locks, upserts).
func IsMySQL(db *gorm.DB) bool { return db.Name() == "mysql" }
