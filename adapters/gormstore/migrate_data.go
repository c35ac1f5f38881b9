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

// EachRow runs query on tx and calls scan for each row, then closes the rows: a data
// migration reads a batch this way before it writes, since a connection cannot write while
// it is still reading rows.
func EachRow(ctx context.Context, tx *sql.Tx, query string, args []any, scan func(*sql.Rows) error) (err error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, rows.Close()) }()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
