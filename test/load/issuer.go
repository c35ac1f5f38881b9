package main

import (
	"context"
	"database/sql"
	"fmt"
)

// issuer runs a DB ceiling's statements on its pool in one of the two ways database/sql
// offers:
//   - as text, the plain way (db.QueryContext with arguments): database/sql prepares, runs and
//     closes the statement on every call, which on MySQL is a round trip more and a parse per
//     call. The targets' DB ceilings issue their statements this way.
//   - prepared once on the pool, as the service runs its own (gormstore.QueryPrepared):
//     database/sql prepares the statement on each connection the first time it runs there and
//     keeps it. The "prepared" informational ceilings and the bare list server do this.
//
// The prepared way prepares every statement up front (preparedIssuer), on a pool no
// transaction holds yet: preparing takes a free connection, and 64 clients in transactions
// waiting on each other's row locks may hold every connection of the pool.
type issuer struct {
	db       *sql.DB
	prepared bool
	stmts    map[string]*sql.Stmt // SQL text -> statement; written only by preparedIssuer
}

// textIssuer issues its statements on db as text.
func textIssuer(db *sql.DB) *issuer { return &issuer{db: db} }

// preparedIssuer prepares queries on db's pool and issues them prepared. The statements live
// as long as the pool: closing the pool closes the connections they are prepared on.
func preparedIssuer(ctx context.Context, db *sql.DB, queries ...string) (*issuer, error) {
	is := &issuer{db: db, prepared: true, stmts: make(map[string]*sql.Stmt, len(queries))}
	for _, q := range queries {
		s, err := db.PrepareContext(ctx, q) //nolint:sqlclosecheck // lives as long as the pool
		if err != nil {
			return nil, fmt.Errorf("prepare %q: %w", q, err)
		}
		is.stmts[q] = s
	}
	return is, nil
}

// stmt returns query's prepared statement.
func (is *issuer) stmt(query string) (*sql.Stmt, error) {
	s, ok := is.stmts[query]
	if !ok {
		return nil, fmt.Errorf("load: statement %q was not prepared by preparedIssuer", query)
	}
	return s, nil
}

// query runs query with args on tx, or on the pool when tx is nil.
func (is *issuer) query(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	if !is.prepared {
		if tx != nil {
			return tx.QueryContext(ctx, query, args...)
		}
		return is.db.QueryContext(ctx, query, args...)
	}
	s, err := is.stmt(query)
	if err != nil {
		return nil, err
	}
	if tx != nil {
		// Reuses the statement where it is prepared on the transaction's connection, and is
		// closed with the transaction, as the service's gormstore.stmtOn does.
		s = tx.StmtContext(ctx, s) //nolint:sqlclosecheck // closed when the transaction ends
	}
	return s.QueryContext(ctx, args...)
}

// scanOne runs query with args as query does and scans its first row into dest; a query
// that returns no row is sql.ErrNoRows.
func (is *issuer) scanOne(ctx context.Context, tx *sql.Tx, query string, args []any, dest ...any) error {
	rows, err := is.query(ctx, tx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	return rows.Close()
}

// exec runs the statement query with args on tx, or on the pool when tx is nil.
func (is *issuer) exec(ctx context.Context, tx *sql.Tx, query string, args ...any) error {
	var err error
	switch {
	case !is.prepared && tx != nil:
		_, err = tx.ExecContext(ctx, query, args...)
	case !is.prepared:
		_, err = is.db.ExecContext(ctx, query, args...)
	default:
		var s *sql.Stmt
		if s, err = is.stmt(query); err != nil {
			return err
		}
		if tx != nil {
			s = tx.StmtContext(ctx, s) //nolint:sqlclosecheck // closed when the transaction ends
		}
		_, err = s.ExecContext(ctx, args...)
	}
	return err
}
