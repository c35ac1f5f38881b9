package gormstore

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
)

// Prepared statements. A repository runs its hot, constant statements through ExecPrepared,
// QueryPrepared or QueryRowPrepared, on whatever db its scope gives it (the pool or a unit of
// work's transaction). The pool that Open returned keeps one preparedQuery per SQL text (the
// statements plugin below): database/sql prepares it on each connection the first time that
// connection runs it and keeps it there, so the server parses the statement once per
// connection instead of once per call; on MySQL it is also one round trip. It is prepared
// lazily: a database that is down when the service starts only delays the preparation, and
// until it succeeds the statement runs unprepared, so an outage is reported by the statement
// itself (as domain.ErrUnavailable) and service resumes by itself.

// preparedQuery is one statement prepared on the pool.
type preparedQuery struct {
	db    *gorm.DB
	query string

	stmt atomic.Pointer[sql.Stmt]
	// preparing is held by the one caller that is preparing the statement.
	preparing sync.Mutex
}

// prepared returns the statement, preparing it on first use. It returns nil while that fails
// and while another caller is preparing it: nobody waits on a lock that a preparation stuck on
// an unreachable database could hold past their request's deadline.
func (p *preparedQuery) prepared(ctx context.Context) *sql.Stmt {
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

// statements is a GORM plugin, registered by Open, that keeps one preparedQuery per SQL text
// for the pool. Only constant texts are run through it, so it stays as small as the code.
type statements struct {
	pool    *gorm.DB
	byQuery sync.Map // string -> *preparedQuery: read on every hot statement, written once per text
}

const statementsName = "gormstore:prepared-statements"

func (*statements) Name() string { return statementsName }

func (s *statements) Initialize(db *gorm.DB) error {
	s.pool = db
	return nil
}

// of returns the preparedQuery of query, made on first use.
func (s *statements) of(query string) *preparedQuery {
	p, ok := s.byQuery.Load(query)
	if !ok {
		p, _ = s.byQuery.LoadOrStore(query, &preparedQuery{db: s.pool, query: query})
	}
	pq, _ := p.(*preparedQuery) // only *preparedQuery values are stored
	return pq
}

// stmtOn returns query prepared on db's pool, bound to db's transaction when db is one; nil
// when it cannot be had (db did not come from Open, or the preparation failed), and the query
// then runs unprepared.
func stmtOn(ctx context.Context, db *gorm.DB, query string) *sql.Stmt {
	s, ok := db.Plugins[statementsName].(*statements)
	if !ok {
		return nil
	}
	pq := s.of(query)
	switch conn := db.Statement.ConnPool.(type) {
	case *sql.DB:
		return pq.prepared(ctx) //nolint:sqlclosecheck // shared by every call; see prepared
	case *sql.Tx:
		stmt := pq.stmt.Load()
		if stmt == nil {
			// Preparing takes a connection of the pool, and every one of them may be held
			// by a transaction waiting for a row lock this one holds: prepare beside it,
			// and run unprepared until that is done.
			go pq.prepareBeside(context.WithoutCancel(ctx))
			return nil
		}
		// Reuses the statement where it is already prepared on the transaction's connection
		// (database/sql), and is closed with the transaction.
		return conn.StmtContext(ctx, stmt) //nolint:sqlclosecheck // closed when the transaction ends
	}
	return nil
}

// prepareBeside prepares the statement on the pool, outside any request, for transactions to
// use once it is ready.
func (p *preparedQuery) prepareBeside(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, prepareBesideTimeout)
	defer cancel()
	p.prepared(ctx) //nolint:sqlclosecheck // shared by every call; see prepared
}

// prepareBesideTimeout bounds a preparation made beside a transaction: past it (the pool stays
// busy, or the database is down) a later call tries again.
const prepareBesideTimeout = 10 * time.Second

// ExecPrepared runs the constant statement query with args on db, the pool or the transaction
// of a unit of work, prepared once per connection of the pool. It skips GORM's statement
// builder: for the hot paths. Errors are translated as GORM
// translates its own (gorm.ErrDuplicatedKey, gorm.ErrForeignKeyViolated), not mapped.
func ExecPrepared(ctx context.Context, db *gorm.DB, query string, args ...any) (sql.Result, error) {
	var (
		res sql.Result
		err error
	)
	if stmt := stmtOn(ctx, db, query); stmt != nil { //nolint:sqlclosecheck // the pool's, or closed with the transaction
		res, err = stmt.ExecContext(ctx, args...)
	} else {
		res, err = db.Statement.ConnPool.ExecContext(ctx, query, args...)
	}
	return res, translate(db, err)
}

// QueryPrepared runs the constant query with args on db as ExecPrepared does, and returns its
// rows.
func QueryPrepared(ctx context.Context, db *gorm.DB, query string, args ...any) (*sql.Rows, error) {
	if stmt := stmtOn(ctx, db, query); stmt != nil { //nolint:sqlclosecheck // the pool's, or closed with the transaction
		return stmt.QueryContext(ctx, args...)
	}
	return db.Statement.ConnPool.QueryContext(ctx, query, args...)
}

// QueryRowPrepared runs the constant query with args on db as ExecPrepared does, and returns
// its first row.
func QueryRowPrepared(ctx context.Context, db *gorm.DB, query string, args ...any) *sql.Row {
	if stmt := stmtOn(ctx, db, query); stmt != nil { //nolint:sqlclosecheck // the pool's, or closed with the transaction
		return stmt.QueryRowContext(ctx, args...)
	}
	return db.Statement.ConnPool.QueryRowContext(ctx, query, args...)
}

// translate turns a driver's error into GORM's portable one where the dialect knows it.
func translate(db *gorm.DB, err error) error {
	if t, ok := db.Dialector.(gorm.ErrorTranslator); err != nil && ok {
		return t.Translate(err)
	}
	return err
}

// PreparedFor returns query's statement on db's pool once one of the functions above has
// prepared it, nil before: for the tests that check a hot path runs prepared.
func PreparedFor(db *gorm.DB, query string) *sql.Stmt {
	s, ok := db.Plugins[statementsName].(*statements)
	if !ok {
		return nil
	}
	p, ok := s.byQuery.Load(query)
	if !ok {
		return nil
	}
	pq, _ := p.(*preparedQuery)
	return pq.stmt.Load()
}
