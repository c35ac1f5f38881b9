package accountsgorm

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/domain/accounts/apikey"
	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports/accounts"
)

// apiKeyRow is one row of the api_keys table.
type apiKeyRow struct {
	ID         string     `gorm:"column:id;primaryKey"`
	UserID     string     `gorm:"column:user_id"`
	Name       string     `gorm:"column:name"`
	Prefix     string     `gorm:"column:prefix"`
	SecretHash string     `gorm:"column:secret_hash"`
	CreatedAt  time.Time  `gorm:"column:created_at;autoCreateTime:false"`
	ExpiresAt  *time.Time `gorm:"column:expires_at"`
	LastUsedAt *time.Time `gorm:"column:last_used_at"`
}

func (apiKeyRow) TableName() string { return "api_keys" }

func toAPIKeyRow(k *apikey.Key) apiKeyRow {
	return apiKeyRow{
		ID: string(k.ID()), UserID: string(k.UserID()), Name: k.Name(), Prefix: k.Prefix(), SecretHash: k.Hash(),
		CreatedAt: gormstore.DBTime(k.CreatedAt()), ExpiresAt: gormstore.DBTimePtr(k.ExpiresAt()),
		LastUsedAt: gormstore.DBTimePtr(k.LastUsedAt()),
	}
}

func (r *apiKeyRow) toDomain() *apikey.Key {
	return apikey.Rehydrate(apikey.ID(r.ID), identity.UserID(r.UserID), r.Name, r.Prefix, r.SecretHash,
		r.CreatedAt, r.ExpiresAt, r.LastUsedAt)
}

// apiKeyRepo implements accounts.APIKeyRepository. Its per-request authentication read runs
// as a prepared statement, as the sessions' does.
type apiKeyRepo struct{ db *gorm.DB }

var _ accounts.APIKeyRepository = apiKeyRepo{}

func (r apiKeyRepo) Add(ctx context.Context, k *apikey.Key) error {
	row := toAPIKeyRow(k)
	err := r.db.WithContext(ctx).Create(&row).Error
	switch {
	case errors.Is(err, gorm.ErrForeignKeyViolated):
		return fmt.Errorf("gormstore: api key user %s: %w", k.UserID(), user.ErrNotFound)
	case errors.Is(err, gorm.ErrDuplicatedKey):
		// 256-bit secrets and UUIDv7 ids do not collide by chance.
		return fmt.Errorf("gormstore: api key %s already exists", k.ID())
	}
	return gormstore.MapErr(err)
}

func (r apiKeyRepo) ListByUser(ctx context.Context, userID identity.UserID) ([]*apikey.Key, error) {
	var rows []apiKeyRow
	if err := r.db.WithContext(ctx).Where("user_id = ?", string(userID)).Order("id DESC").Find(&rows).Error; err != nil {
		return nil, gormstore.MapErr(err)
	}
	out := make([]*apikey.Key, len(rows))
	for i := range rows {
		out[i] = rows[i].toDomain()
	}
	return out, nil
}

func (r apiKeyRepo) Delete(ctx context.Context, userID identity.UserID, id apikey.ID) error {
	res := r.db.WithContext(ctx).Where("id = ? AND user_id = ?", string(id), string(userID)).Delete(&apiKeyRow{})
	if res.Error != nil {
		return gormstore.MapErr(res.Error)
	}
	if res.RowsAffected == 0 {
		return apikey.ErrNotFound
	}
	return nil
}

func (r apiKeyRepo) CountActiveForUpdate(ctx context.Context, userID identity.UserID, now time.Time) (int, error) {
	db := r.db.WithContext(ctx)
	// The user's row is locked first, as ports.Stamps.Bump does for every write of the user:
	// concurrent creations queue here. On MySQL the count below is then the first consistent
	// read of the transaction, so it sees every key committed before the lock was granted.
	// SQLite needs no lock: its write transactions begin IMMEDIATE and run one at a time.
	lock := "SELECT id FROM users WHERE id = ?"
	if gormstore.IsMySQL(db) {
		lock += " FOR UPDATE"
	}
	var ids []string
	if err := db.Raw(lock, string(userID)).Scan(&ids).Error; err != nil {
		return 0, gormstore.MapErr(err)
	}
	if len(ids) == 0 {
		return 0, user.ErrNotFound
	}
	var n int64
	err := db.Model(&apiKeyRow{}).
		Where("user_id = ? AND (expires_at IS NULL OR expires_at > ?)", string(userID), gormstore.DBTime(now)).
		Count(&n).Error
	if err != nil {
		return 0, gormstore.MapErr(err)
	}
	return int(n), nil
}

// apiKeyPrincipalSQL reads everything a request made with a key needs in one lookup of the
// secret's unique index joined to the user's primary key: the join makes a deleted user's
// keys worthless at once, and reading the role and stamps here makes a role change visible on
// the very next request, exactly as the session read does (principalSQL).
//
//nolint:gosec // G101: a query that names a hash column, not a credential
const apiKeyPrincipalSQL = `SELECT k.id, u.id, u.role, u.stamps, k.expires_at
FROM api_keys k
JOIN users u ON u.id = k.user_id
WHERE k.secret_hash = ? AND (k.expires_at IS NULL OR k.expires_at > ?)`

func (r apiKeyRepo) Principal(ctx context.Context, hash string, now time.Time) (identity.Principal, error) {
	var keyID, userID, role, stamps string
	var expires sql.NullTime
	args := []any{hash, gormstore.DBTime(now)}
	err := gormstore.QueryRowPrepared(ctx, r.db, apiKeyPrincipalSQL, args...).Scan(&keyID, &userID, &role, &stamps, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return identity.Principal{}, apikey.ErrNotFound
	}
	if err != nil {
		return identity.Principal{}, gormstore.MapErr(err)
	}
	p := identity.Principal{
		UserID:     identity.UserID(userID),
		Role:       identity.Role(role),
		Credential: identity.Credential{Kind: identity.CredentialAPIKey, ID: keyID},
		Stamps:     identity.Stamps(stamps),
	}
	if expires.Valid {
		p.Credential.ExpiresAt = expires.Time.UTC()
	}
	return p, nil
}

// recordBatch bounds the keys of one UPDATE: four parameters each, well within both
// databases' limits on parameters and statement length.
const recordBatch = 500

// RecordUses writes a batch of last-used times in one UPDATE (one per recordBatch keys):
//
//	UPDATE api_keys SET last_used_at = CASE id WHEN ? THEN ? ... END
//	WHERE (id = ? AND (last_used_at IS NULL OR last_used_at < ?)) OR ...
//
// The condition keeps a later stored time (written by another instance, say), so the column
// never moves backwards, and is portable where GREATEST and MAX are not.
func (r apiKeyRepo) RecordUses(ctx context.Context, uses map[apikey.ID]time.Time) error {
	ids := slices.Sorted(maps.Keys(uses)) // a stable order: fewer lock-order surprises between instances
	for len(ids) > 0 {
		n := min(len(ids), recordBatch)
		batch := ids[:n]
		ids = ids[n:]
		var set, where strings.Builder
		setArgs := make([]any, 0, 2*n)
		whereArgs := make([]any, 0, 2*n)
		set.WriteString("UPDATE api_keys SET last_used_at = CASE id")
		for i, id := range batch {
			at := gormstore.DBTime(uses[id])
			set.WriteString(" WHEN ? THEN ?")
			setArgs = append(setArgs, string(id), at)
			if i > 0 {
				where.WriteString(" OR ")
			}
			where.WriteString("(id = ? AND (last_used_at IS NULL OR last_used_at < ?))")
			whereArgs = append(whereArgs, string(id), at)
		}
		set.WriteString(" END WHERE ")
		set.WriteString(where.String())
		if err := r.db.WithContext(ctx).Exec(set.String(), append(setArgs, whereArgs...)...).Error; err != nil {
			return gormstore.MapErr(err)
		}
	}
	return nil
}
