package gormstore

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
)

// Stamps implements ports.Stamps on the user_stamps table. The principal read of each
// credential scheme joins that table, so a request's principal carries the stamps it needs.
type Stamps struct{}

var _ ports.Stamps = Stamps{}

// NewStamps returns the stamps adapter; it builds on the scopes handed to Bump.
func NewStamps() Stamps { return Stamps{} }

// The upsert of Bump, in each dialect: a scope's first bump creates its row.
const (
	bumpStampMySQL  = `INSERT INTO user_stamps (user_id, scope, version) VALUES (?, ?, 1) ON DUPLICATE KEY UPDATE version = version + 1`
	bumpStampSQLite = `INSERT INTO user_stamps (user_id, scope, version) VALUES (?, ?, 1) ON CONFLICT (user_id, scope) DO UPDATE SET version = version + 1`
)

// Bump increments the user's counter of scope in tx.
func (Stamps) Bump(ctx context.Context, tx ports.Scope, user identity.UserID, scope string) error {
	db, err := DB(tx)
	if err != nil {
		return err
	}
	stmt := bumpStampSQLite
	if IsMySQL(db) {
		stmt = bumpStampMySQL
	}
	err = db.WithContext(ctx).Exec(stmt, string(user), scope).Error
	if errors.Is(err, gorm.ErrForeignKeyViolated) {
		return fmt.Errorf("gormstore: stamp of user %s: %w", user, identity.ErrUnknownUser)
	}
	return MapErr(err)
}
