package gormstore

import (
	"strings"
	"time"

	"github.com/acme/postsvc/domain/post"
	"github.com/acme/postsvc/domain/session"
	"github.com/acme/postsvc/domain/user"
)

// The storage models mirror the tables created by the migrations; the migrations, not these
// tags, define the schema. Timestamp fields opt out of GORM's automatic create and update
// times: the domain decides every timestamp, so the clock is the application's, not the
// database driver's.

// userRow is one row of the users table.
type userRow struct {
	ID           string `gorm:"column:id;primaryKey"`
	Email        string `gorm:"column:email"`
	PasswordHash string `gorm:"column:password_hash"`
	Name         string `gorm:"column:name"`
	// NameLower is the name lower-cased by Go's Unicode rules, kept for Search. Matching it
	// with a lower-cased query gives the same case-insensitive match on MySQL and SQLite;
	// SQLite's own LOWER and LIKE fold ASCII letters only, and MySQL's case-insensitive
	// collations also fold accents, which would make "é" match "e".
	NameLower    string    `gorm:"column:name_lower"`
	Role         string    `gorm:"column:role"`
	PostsVersion int64     `gorm:"column:posts_version"`
	CreatedAt    time.Time `gorm:"column:created_at;autoCreateTime:false"`
	UpdatedAt    time.Time `gorm:"column:updated_at;autoUpdateTime:false"`
}

func (userRow) TableName() string { return "users" }

// postRow is one row of the posts table.
type postRow struct {
	ID       string `gorm:"column:id;primaryKey"`
	AuthorID string `gorm:"column:author_id"`
	Text     string `gorm:"column:text"`
	// TextBytes is len(Text), kept beside it so a page can be cut to its byte budget from the
	// index alone, before any text is read (postRepo.ListByAuthor).
	TextBytes int64     `gorm:"column:text_bytes"`
	CreatedAt time.Time `gorm:"column:created_at;autoCreateTime:false"`
}

func (postRow) TableName() string { return "posts" }

// sessionRow is one row of the sessions table.
type sessionRow struct {
	ID          string     `gorm:"column:id;primaryKey"`
	UserID      string     `gorm:"column:user_id"`
	RefreshHash string     `gorm:"column:refresh_hash"`
	CreatedAt   time.Time  `gorm:"column:created_at;autoCreateTime:false"`
	ExpiresAt   time.Time  `gorm:"column:expires_at"`
	RotatedAt   time.Time  `gorm:"column:rotated_at"`
	RevokedAt   *time.Time `gorm:"column:revoked_at"`
}

func (sessionRow) TableName() string { return "sessions" }

// dbTime is how every timestamp is written: UTC, cut to the microsecond that MySQL's
// DATETIME(6) keeps. Cutting in Go rather than letting MySQL round keeps both dialects
// storing the same instant, and SQLite's text timestamps comparable in queries.
func dbTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

func dbTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := dbTime(*t)
	return &v
}

// foldName is the search form of a display name; see userRow.NameLower.
func foldName(name string) string { return strings.ToLower(name) }

func toUserRow(u *user.User) userRow {
	return userRow{
		ID:           string(u.ID()),
		Email:        u.Email().String(),
		PasswordHash: string(u.PasswordHash()),
		Name:         u.Name(),
		NameLower:    foldName(u.Name()),
		Role:         string(u.Role()),
		CreatedAt:    dbTime(u.CreatedAt()),
		UpdatedAt:    dbTime(u.UpdatedAt()),
	}
}

func (r *userRow) toDomain() *user.User {
	return user.Rehydrate(user.ID(r.ID), r.Email, user.PasswordHash(r.PasswordHash), r.Name,
		user.Role(r.Role), r.CreatedAt, r.UpdatedAt)
}

func toPostRow(p *post.Post) postRow {
	return postRow{
		ID:        string(p.ID()),
		AuthorID:  string(p.AuthorID()),
		Text:      p.Text(),
		TextBytes: int64(len(p.Text())),
		CreatedAt: dbTime(p.CreatedAt()),
	}
}

func (r *postRow) toDomain() *post.Post {
	return post.Rehydrate(post.ID(r.ID), user.ID(r.AuthorID), r.Text, r.CreatedAt)
}

func toSessionRow(s *session.Session) sessionRow {
	return sessionRow{
		ID:          string(s.ID()),
		UserID:      string(s.UserID()),
		RefreshHash: s.RefreshHash(),
		CreatedAt:   dbTime(s.CreatedAt()),
		ExpiresAt:   dbTime(s.ExpiresAt()),
		RotatedAt:   dbTime(s.RotatedAt()),
		RevokedAt:   dbTimePtr(s.RevokedAt()),
	}
}

func (r *sessionRow) toDomain() *session.Session {
	return session.Rehydrate(session.ID(r.ID), user.ID(r.UserID), r.RefreshHash,
		r.CreatedAt, r.ExpiresAt, r.RotatedAt, r.RevokedAt)
}
