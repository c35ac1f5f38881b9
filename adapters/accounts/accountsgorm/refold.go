package accountsgorm

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/domain/accounts/user"
)

// RefoldMigration re-keys the accounts stored while emails and the search form of names were
// lower-cased rather than case folded (domain.FoldCase): an address with a final sigma, a long
// s, a micro sign or another letter with a second lower-case form is stored again in its
// folded form, so that it is found however it is typed, and names' search form is folded
// again. Only rows holding a character outside ASCII can change, so only they are read.
//
// An address whose folded form is already another account's (two accounts that were one
// address all along) is left as it was and reported in the log: that account keeps its row,
// its posts and its sessions, and an admin decides which of the two stays. Login finds the
// other one.
var RefoldMigration = gormstore.DataMigration{Name: "accounts: case-folded emails and name search", Version: 9, Up: refoldUsers}

func refoldUsers(ctx context.Context, tx *sql.Tx, driver string) error {
	type stored struct{ id, email, name string }
	// Oldest first (ids are time-ordered): of two accounts that fold to one address, the
	// older gets it.
	return gormstore.EachInBatches(ctx, tx, "SELECT id, email, name FROM users WHERE ("+
		gormstore.NonASCII(driver, "email")+" OR "+gormstore.NonASCII(driver, "name")+") AND id > ? ORDER BY id LIMIT ?", nil,
		func(rows *sql.Rows) (string, stored, error) {
			var u stored
			err := rows.Scan(&u.id, &u.email, &u.name)
			return u.id, u, err
		},
		func(u stored) error { return refoldUser(ctx, tx, u.id, u.email, u.name) })
}

func refoldUser(ctx context.Context, tx *sql.Tx, id, stored, name string) error {
	email := user.NormalizeEmail(stored)
	if email != stored {
		var holder string
		err := tx.QueryRowContext(ctx, "SELECT id FROM users WHERE email = ?", email).Scan(&holder)
		switch {
		case err == nil:
			slog.WarnContext(ctx, "accounts: an address is another account's once case folded; it is left as it was for an admin to decide",
				"account", id, "email", stored, "folded", email, "account_with_folded_email", holder)
			email = stored
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
	}
	_, err := tx.ExecContext(ctx, "UPDATE users SET email = ?, name_lower = ? WHERE id = ?", email, foldName(name), id)
	return err
}
