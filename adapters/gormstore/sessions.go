package gormstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/acme/postsvc/domain/session"
	"github.com/acme/postsvc/domain/user"
	"github.com/acme/postsvc/ports"
)

// sessionRepo implements ports.SessionRepository. principal, set on the pool's repository
// (Store), runs the authentication read as a prepared statement; inside a transaction it is
// nil and the read goes through the transaction's connection.
type sessionRepo struct {
	db        *gorm.DB
	principal *preparedQuery
}

var _ ports.SessionRepository = sessionRepo{}

func (r sessionRepo) Add(ctx context.Context, s *session.Session) error {
	row := toSessionRow(s)
	err := r.db.WithContext(ctx).Create(&row).Error
	switch {
	case errors.Is(err, gorm.ErrForeignKeyViolated):
		return fmt.Errorf("gormstore: session user %s: %w", s.UserID(), user.ErrNotFound)
	case errors.Is(err, gorm.ErrDuplicatedKey):
		return fmt.Errorf("gormstore: session %s already exists", s.ID())
	}
	return mapErr(err)
}

func (r sessionRepo) ByID(ctx context.Context, id session.ID) (*session.Session, error) {
	var row sessionRow
	err := r.db.WithContext(ctx).Where("id = ?", string(id)).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, session.ErrNotFound
	}
	if err != nil {
		return nil, mapErr(err)
	}
	return row.toDomain(), nil
}

func (r sessionRepo) Update(ctx context.Context, s *session.Session) error {
	res := r.db.WithContext(ctx).Model(&sessionRow{}).Where("id = ?", string(s.ID())).Updates(map[string]any{
		"refresh_hash": s.RefreshHash(),
		"rotated_at":   dbTime(s.RotatedAt()),
		"revoked_at":   dbTimePtr(s.RevokedAt()),
	})
	if res.Error != nil {
		return mapErr(res.Error)
	}
	if res.RowsAffected == 0 {
		return session.ErrNotFound
	}
	return nil
}

func (r sessionRepo) RevokeAllForUser(ctx context.Context, userID user.ID, now time.Time) error {
	// Sessions revoked earlier keep their first revocation time, as Session.Revoke does.
	return mapErr(r.db.WithContext(ctx).Model(&sessionRow{}).
		Where("user_id = ? AND revoked_at IS NULL", string(userID)).
		Update("revoked_at", dbTime(now)).Error)
}

// principalSQL reads everything an authenticated request needs in one primary-key lookup
// joined to one primary-key lookup. The join is what makes a deleted user's session worthless
// at once, and reading role and posts_version here is what makes a role change or another
// instance's post write visible on the very next request.
const principalSQL = `SELECT u.id AS user_id, u.role AS role, u.posts_version AS posts_version
FROM sessions s
JOIN users u ON u.id = s.user_id
WHERE s.id = ? AND s.revoked_at IS NULL AND s.expires_at > ?`

// Principal runs on every authenticated request, so it skips GORM's statement builder and
// reflection-based scanning and goes straight to the connection: through the statement the
// Store prepared (parsed once per connection by the server, not on every request), or the
// transaction's connection inside a unit of work.
func (r sessionRepo) Principal(ctx context.Context, id session.ID, now time.Time) (session.Principal, error) {
	var (
		userID, role string
		postsVersion int64
	)
	args := []any{string(id), dbTime(now)}
	var row *sql.Row
	if r.principal != nil {
		row = r.principal.queryRow(ctx, args...)
	} else {
		row = r.db.Statement.ConnPool.QueryRowContext(ctx, principalSQL, args...)
	}
	err := row.Scan(&userID, &role, &postsVersion)
	if errors.Is(err, sql.ErrNoRows) {
		return session.Principal{}, session.ErrNotFound
	}
	if err != nil {
		return session.Principal{}, mapErr(err)
	}
	return session.Principal{
		UserID:       user.ID(userID),
		SessionID:    id,
		Role:         user.Role(role),
		PostsVersion: postsVersion,
	}, nil
}
