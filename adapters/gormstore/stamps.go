package gormstore

import (
	"context"
	"fmt"

	"gorm.io/gorm/clause"

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
	read := db.WithContext(ctx).Table("users").Select("stamps").Where("id = ?", string(user))
	if IsMySQL(db) {
		read = read.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate})
	}
	var current []string
	if err := read.Pluck("stamps", &current).Error; err != nil {
		return MapErr(err)
	}
	if len(current) == 0 {
		return fmt.Errorf("gormstore: stamp of user %s: %w", user, identity.ErrUnknownUser)
	}
	next, err := identity.Stamps(current[0]).Bumped(scope)
	if err != nil {
		return err
	}
	if err := db.WithContext(ctx).Exec(`UPDATE users SET stamps = ? WHERE id = ?`, string(next), string(user)).Error; err != nil {
		return MapErr(err)
	}
	if s.board == nil {
		return nil
	}
	return AfterCommit(tx, func() { s.board.Publish(ctx, user, next) })
}
