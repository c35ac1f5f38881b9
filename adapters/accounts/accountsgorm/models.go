package accountsgorm

import (
	"time"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/domain/accounts/session"
	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/domain/identity"
)

// The storage models mirror the tables created by the migrations (adapters/gormstore/
// migrations); the migrations, not these tags, define the schema. Timestamp fields opt out of
// GORM's automatic create and update times: the domain decides every timestamp.

// userRow is one row of the users table.
type userRow struct {
	ID           string `gorm:"column:id;primaryKey"`
	Email        string `gorm:"column:email"`
	PasswordHash string `gorm:"column:password_hash"`
	Name         string `gorm:"column:name"`
	// NameLower is the name in its search form (user.SearchForm: NFC, case folded by Go),
	// kept for Search. Matching it with a query in the same form gives the same
	// case-insensitive match on MySQL and SQLite; SQLite's own LOWER and LIKE fold ASCII
	// letters only, and MySQL's case-insensitive collations also fold accents, which would
	// make "é" match "e".
	NameLower string    `gorm:"column:name_lower"`
	Role      string    `gorm:"column:role"`
	CreatedAt time.Time `gorm:"column:created_at;autoCreateTime:false"`
	UpdatedAt time.Time `gorm:"column:updated_at;autoUpdateTime:false"`
}

func (userRow) TableName() string { return "users" }

// sessionRow is one row of the sessions table.
type sessionRow struct {
	ID          string     `gorm:"column:id;primaryKey"`
	UserID      string     `gorm:"column:user_id"`
	RefreshHash string     `gorm:"column:refresh_hash"`
	FamilyHash  *string    `gorm:"column:family_hash"`
	CreatedAt   time.Time  `gorm:"column:created_at;autoCreateTime:false"`
	ExpiresAt   time.Time  `gorm:"column:expires_at"`
	RotatedAt   time.Time  `gorm:"column:rotated_at"`
	RevokedAt   *time.Time `gorm:"column:revoked_at"`
}

func (sessionRow) TableName() string { return "sessions" }

// foldName is the search form of a display name; see userRow.NameLower.
func foldName(name string) string { return user.SearchForm(name) }

func toUserRow(u *user.User) userRow {
	return userRow{
		ID:           string(u.ID()),
		Email:        u.Email().String(),
		PasswordHash: string(u.PasswordHash()),
		Name:         u.Name(),
		NameLower:    foldName(u.Name()),
		Role:         string(u.Role()),
		CreatedAt:    gormstore.DBTime(u.CreatedAt()),
		UpdatedAt:    gormstore.DBTime(u.UpdatedAt()),
	}
}

func (r *userRow) toDomain() *user.User {
	return user.Rehydrate(identity.UserID(r.ID), r.Email, user.PasswordHash(r.PasswordHash), r.Name,
		identity.Role(r.Role), r.CreatedAt, r.UpdatedAt)
}

func toSessionRow(s *session.Session) sessionRow {
	return sessionRow{
		ID:          string(s.ID()),
		UserID:      string(s.UserID()),
		RefreshHash: s.RefreshHash(),
		FamilyHash:  nullable(s.FamilyHash()),
		CreatedAt:   gormstore.DBTime(s.CreatedAt()),
		ExpiresAt:   gormstore.DBTime(s.ExpiresAt()),
		RotatedAt:   gormstore.DBTime(s.RotatedAt()),
		RevokedAt:   gormstore.DBTimePtr(s.RevokedAt()),
	}
}

func (r *sessionRow) toDomain() *session.Session {
	family := ""
	if r.FamilyHash != nil {
		family = *r.FamilyHash
	}
	return session.Rehydrate(session.ID(r.ID), identity.UserID(r.UserID), r.RefreshHash, family,
		r.CreatedAt, r.ExpiresAt, r.RotatedAt, r.RevokedAt)
}

// nullable is s, or NULL when it is empty.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
