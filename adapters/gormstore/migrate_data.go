package gormstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/pressly/goose/v3"

	"github.com/acme/postsvc/config"
)

// DataMigration is a migration of stored data written in Go, for a change that SQL cannot
// express because it follows the domain's own rules (a new normalisation of stored keys, say).
// The context whose data it changes defines it in its adapter; the composition root hands it
// to NewMigrator, and it runs in a transaction at its version, in order with the SQL files
// (whose numbers it must not take). Reverting it does nothing: it only ever rewrites data into
// a form the code before it reads as well.
type DataMigration struct {
	Version int64
	// Name is what the migration status shows in the place of a file name.
	Name string
	// Up rewrites the data inside tx; driver is config.DriverMySQL or config.DriverSQLite.
	Up func(ctx context.Context, tx *sql.Tx, driver string) error
}

func (d DataMigration) migration(driver string) *goose.Migration {
	return goose.NewGoMigration(d.Version,
		&goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error { return d.Up(ctx, tx, driver) }},
		&goose.GoFunc{RunTx: func(context.Context, *sql.Tx) error { return nil }},
	)
}

// NonASCII is a condition, for driver's dialect, that holds for the rows whose column holds a
// character outside ASCII: data migrations that re-key text use it to visit only the rows
// whose keys can change.
func NonASCII(driver, column string) string {
	if driver == config.DriverMySQL {
		return "LENGTH(" + column + ") <> CHAR_LENGTH(" + column + ")"
	}
	return "LENGTH(CAST(" + column + " AS BLOB)) <> LENGTH(" + column + ")"
}

// EachInBatches visits the rows of query in batches, in id order, for a data migration:
// query selects the row's id first and ends "id > ? ... ORDER BY id LIMIT ?", taking args
// and then the id to start after and the batch size. Each batch is read to its end before
// visit sees its rows, since a connection cannot write while it is still reading rows, so
// visit may write (but must not change ids). scan reads one row and returns its id.
func EachInBatches[T any](ctx context.Context, tx *sql.Tx, query string, args []any,
	scan func(*sql.Rows) (string, T, error), visit func(T) error,
) error {
	type row struct {
		id string
		v  T
	}
	for after := ""; ; {
		batch, err := readBatch(ctx, tx, query, append(args[:len(args):len(args)], after, dataBatch), func(rows *sql.Rows) (row, error) {
			id, v, err := scan(rows)
			return row{id, v}, err
		})
		if err != nil || len(batch) == 0 {
			return err
		}
		for _, r := range batch {
			if err := visit(r.v); err != nil {
				return err
			}
		}
		after = batch[len(batch)-1].id
	}
}

// dataBatch is how many rows EachInBatches reads at a time.
const dataBatch = 500

func readBatch[T any](ctx context.Context, tx *sql.Tx, query string, args []any, scan func(*sql.Rows) (T, error)) (batch []T, err error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, rows.Close()) }()
	batch = make([]T, 0, dataBatch)
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		batch = append(batch, v)
	}
	return batch, rows.Err()
}
