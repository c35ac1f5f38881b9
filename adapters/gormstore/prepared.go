package gormstore

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"

	"gorm.io/gorm"
)

// PreparedQuery is one query run as a prepared statement on the pool. database/sql prepares
// it on each connection the first time that connection runs it and keeps it there, so the
// server parses the query once per connection instead of once per call; on MySQL it is also
// one round trip. It is prepared lazily: a database that is down when the service starts
// only delays the preparation, and until it succeeds the query runs unprepared, so an outage
// is reported by the query itself (as domain.ErrUnavailable) and service resumes by itself.
type PreparedQuery struct {
	db    *gorm.DB
	query string

	stmt atomic.Pointer[sql.Stmt]
	// preparing is held by the one caller that is preparing the statement.
	preparing sync.Mutex
}

// Prepared returns the statement once it has been prepared, nil before: for tests that check
// a query runs prepared.
func (p *PreparedQuery) Prepared() *sql.Stmt { return p.stmt.Load() }

// NewPreparedQuery prepares query on the pool db, lazily: on its first use.
func NewPreparedQuery(db *gorm.DB, query string) *PreparedQuery {
	return &PreparedQuery{db: db, query: query}
}

// QueryRow runs the query with args, through the prepared statement when it can be had.
func (p *PreparedQuery) QueryRow(ctx context.Context, args ...any) *sql.Row {
	if stmt := p.prepared(ctx); stmt != nil { //nolint:sqlclosecheck // shared by every call; see prepared
		return stmt.QueryRowContext(ctx, args...)
	}
	return p.db.Statement.ConnPool.QueryRowContext(ctx, p.query, args...)
}

// Query runs the query with args and returns its rows, through the prepared statement when it
// can be had.
func (p *PreparedQuery) Query(ctx context.Context, args ...any) (*sql.Rows, error) {
	if stmt := p.prepared(ctx); stmt != nil { //nolint:sqlclosecheck // shared by every call; see prepared
		return stmt.QueryContext(ctx, args...)
	}
	return p.db.Statement.ConnPool.QueryContext(ctx, p.query, args...)
}

// prepared returns the statement, preparing it on first use. It returns nil while that fails
// and while another caller is preparing it: nobody waits on a lock that a preparation stuck on
// an unreachable database could hold past their request's deadline.
func (p *PreparedQuery) prepared(ctx context.Context) *sql.Stmt {
	if stmt := p.stmt.Load(); stmt != nil {
		return stmt
	}
	if !p.preparing.TryLock() {
		return nil
	}
	defer p.preparing.Unlock()
	if stmt := p.stmt.Load(); stmt != nil {
		return stmt
	}
	sqlDB, err := p.db.DB()
	if err != nil {
		return nil
	}
	// The statement lives as long as the pool: closing the pool closes the connections it
	// is prepared on, so it is never closed by itself.
	stmt, err := sqlDB.PrepareContext(ctx, p.query) //nolint:sqlclosecheck // see above
	if err != nil {
		return nil
	}
	p.stmt.Store(stmt)
	return stmt
}
