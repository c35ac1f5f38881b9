package accountsgorm

import (
	"context"
	"database/sql"

	"golang.org/x/text/unicode/norm"

	"github.com/acme/postsvc/adapters/gormstore"
)

// NFCNamesMigration stores again, in Unicode NFC, the display names stored before names were
// normalised (user.ParseName), and recomputes their search form (user.SearchForm, now in NFC
// too), so that the admin directory finds a name that was typed with a combining accent
// ("e" and U+0301) by a query typed with the precomposed letter (U+00E9), and the other way
// round. Only rows whose name holds a character outside ASCII can change, so only they are
// read.
var NFCNamesMigration = gormstore.DataMigration{Name: "accounts: names in NFC, searched in NFC", Version: 13, Up: nfcNames}

func nfcNames(ctx context.Context, tx *sql.Tx, driver string) error {
	type stored struct{ id, name, nameLower string }
	return gormstore.EachInBatches(ctx, tx, "SELECT id, name, name_lower FROM users WHERE "+
		gormstore.NonASCII(driver, "name")+" AND id > ? ORDER BY id LIMIT ?", nil,
		func(rows *sql.Rows) (string, stored, error) {
			var u stored
			err := rows.Scan(&u.id, &u.name, &u.nameLower)
			return u.id, u, err
		},
		func(u stored) error {
			name := norm.NFC.String(u.name)
			lower := foldName(name)
			if name == u.name && lower == u.nameLower {
				return nil
			}
			_, err := tx.ExecContext(ctx, "UPDATE users SET name = ?, name_lower = ? WHERE id = ?", name, lower, u.id)
			return err
		})
}
