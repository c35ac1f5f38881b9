package gormstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
)

// Stamps implements ports.Stamps on the stamps column of the user's identity row, which the
// principal read of every credential scheme reads with the user. Once the bumping transaction
// has committed, and before its unit of work returns (so before the write is answered), the
// new stamps are published on the board, if there is one, for every instance's principals.
type Stamps struct{ board ports.StampBoard }

var _ ports.Stamps = Stamps{}

// NewStamps returns the stamps adapter; board may be nil (nothing to publish to).
func NewStamps(board ports.StampBoard) Stamps { return Stamps{board: board} }

// Bump increments the user's counter of scope in tx: it reads the row's stamps, locking it
// (SQLite's write transactions already run one at a time), and writes them back bumped. The
// row lock is the one every write of the user takes first, so writers of one user queue.
func (s Stamps) Bump(ctx context.Context, tx ports.Scope, user identity.UserID, scope string) error {
	db, err := DB(tx)
	if err != nil {
		return err
	}
	read := StampsReadSQL
	if IsMySQL(db) {
		read = StampsReadForUpdateSQL
	}
	var current string
	err = QueryRowPrepared(ctx, db, read, string(user)).Scan(&current)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("gormstore: stamp of user %s: %w", user, identity.ErrUnknownUser)
	}
	if err != nil {
		return MapErr(err)
	}
	next, err := identity.Stamps(current).Bumped(scope)
	if err != nil {
		return err
	}
	if _, err := ExecPrepared(ctx, db, StampsBumpSQL, string(next), string(user)); err != nil {
		return MapErr(err)
	}
	if s.board == nil {
		return nil
	}
	return AfterCommit(tx, func() { s.board.Publish(ctx, user, next) })
}

// Bump's statements, prepared once per connection (ExecPrepared): every write of a user's data
// runs them, inside the write lock on SQLite. The load runner's add ceiling runs them too.
const (
	StampsReadSQL          = "SELECT stamps FROM users WHERE id = ?"
	StampsReadForUpdateSQL = "SELECT stamps FROM users WHERE id = ? FOR UPDATE"
	StampsBumpSQL          = "UPDATE users SET stamps = ? WHERE id = ?"
)
