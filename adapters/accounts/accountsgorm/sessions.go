package accountsgorm

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/domain/accounts/session"
	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports/accounts"
)

// sessionRepo implements accounts.SessionRepository.
type sessionRepo struct{ db *gorm.DB }

var _ accounts.SessionRepository = sessionRepo{}

func (r sessionRepo) Add(ctx context.Context, s *session.Session) error {
	row := toSessionRow(s)
	err := r.db.WithContext(ctx).Create(&row).Error
	switch {
	case errors.Is(err, gorm.ErrForeignKeyViolated):
		return fmt.Errorf("gormstore: session user %s: %w", s.UserID(), user.ErrNotFound)
	case errors.Is(err, gorm.ErrDuplicatedKey):
		return fmt.Errorf("gormstore: session %s already exists", s.ID())
	}
	return gormstore.MapErr(err)
}

func (r sessionRepo) ByID(ctx context.Context, id session.ID) (*session.Session, error) {
	return r.byID(ctx, id, false)
}

func (r sessionRepo) ByIDForUpdate(ctx context.Context, id session.ID) (*session.Session, error) {
	return r.byID(ctx, id, true)
}

func (r sessionRepo) byID(ctx context.Context, id session.ID, lock bool) (*session.Session, error) {
	q := r.db.WithContext(ctx).Where("id = ?", string(id))
	if lock && gormstore.IsMySQL(r.db) {
		// A locking read: it waits for a transaction that holds the row and reads what that
		// one committed, where a plain read would see this transaction's snapshot. SQLite has
		// no row locks and needs none: its write transactions begin IMMEDIATE, so they
		// already run one at a time.
		q = q.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate})
	}
	var row sessionRow
	err := q.Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, session.ErrNotFound
	}
	if err != nil {
		return nil, gormstore.MapErr(err)
	}
	return row.toDomain(), nil
}

func (r sessionRepo) Update(ctx context.Context, s *session.Session) error {
	res := r.db.WithContext(ctx).Model(&sessionRow{}).Where("id = ?", string(s.ID())).Updates(map[string]any{
		"refresh_hash": s.RefreshHash(),
		"family_hash":  nullable(s.FamilyHash()),
		"rotated_at":   gormstore.DBTime(s.RotatedAt()),
		"revoked_at":   gormstore.DBTimePtr(s.RevokedAt()),
	})
	if res.Error != nil {
		return gormstore.MapErr(res.Error)
	}
	if res.RowsAffected == 0 {
		return session.ErrNotFound
	}
	return nil
}

func (r sessionRepo) RevokeAllForUser(ctx context.Context, userID identity.UserID, now time.Time) error {
	// Sessions revoked earlier keep their first revocation time, as Session.Revoke does.
	return gormstore.MapErr(r.db.WithContext(ctx).Model(&sessionRow{}).
		Where("user_id = ? AND revoked_at IS NULL", string(userID)).
		Update("revoked_at", gormstore.DBTime(now)).Error)
}

// principalSQL reads everything an authenticated request needs in one primary-key lookup
// joined to one primary-key lookup. The join is what makes a deleted user's session worthless
// at once; reading the role here is what makes a role change visible on the very next
// request, and reading the stamps (the shared kernel's per-user change counters, kept on the
// same row) spares every context that caches a user's data a query of its own.
const principalSQL = `SELECT u.id, u.role, u.stamps, s.expires_at
FROM sessions s
JOIN users u ON u.id = s.user_id
WHERE s.id = ? AND s.revoked_at IS NULL AND s.expires_at > ?`

// Principal runs on every authenticated request, so it skips GORM's statement builder and
// reflection-based scanning and runs as a statement prepared once per connection (parsed once
// by the server, not on every request), on the pool or inside a unit of work.
func (r sessionRepo) Principal(ctx context.Context, id session.ID, now time.Time) (identity.Principal, error) {
	var userID, role, stamps string
	var expires time.Time
	args := []any{string(id), gormstore.DBTime(now)}
	err := gormstore.QueryRowPrepared(ctx, r.db, principalSQL, args...).Scan(&userID, &role, &stamps, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return identity.Principal{}, session.ErrNotFound
	}
	if err != nil {
		return identity.Principal{}, gormstore.MapErr(err)
	}
	return identity.Principal{
		UserID:     identity.UserID(userID),
		Role:       identity.Role(role),
		Credential: identity.Credential{Kind: identity.CredentialSession, ID: string(id), ExpiresAt: expires.UTC()},
		Stamps:     identity.Stamps(stamps),
	}, nil
}
