package ports

import (
	"context"
	"time"

	"github.com/acme/postsvc/domain/post"
	"github.com/acme/postsvc/domain/session"
	"github.com/acme/postsvc/domain/user"
)

// UnitOfWork runs fn with repositories bound to one transaction. It commits when fn returns
// nil and rolls back when fn returns an error or panics, returning that error. Nothing inside
// fn can reach the database outside the transaction, because fn only sees tx. Keep slow work
// (password hashing, token signing, cache writes) outside fn.
type UnitOfWork interface {
	Do(ctx context.Context, fn func(ctx context.Context, tx Repositories) error) error
}

// Repositories is the set of repositories of one scope: bound to a transaction inside
// UnitOfWork.Do, or to the plain connection pool for reads outside one.
type Repositories interface {
	Users() UserRepository
	Posts() PostRepository
	Sessions() SessionRepository
}

// UserRepository stores accounts. Every method wraps domain.ErrUnavailable when the database
// cannot be reached.
type UserRepository interface {
	// Add inserts u; user.ErrEmailTaken when the normalised email exists (from the unique
	// index, never from a prior lookup).
	Add(ctx context.Context, u *user.User) error
	// ByID returns user.ErrNotFound when absent.
	ByID(ctx context.Context, id user.ID) (*user.User, error)
	// ByEmail returns user.ErrNotFound when absent.
	ByEmail(ctx context.Context, email user.Email) (*user.User, error)
	// Update saves name, role and updated_at; user.ErrNotFound when absent.
	Update(ctx context.Context, u *user.User) error
	// Delete removes the account row; user.ErrNotFound when absent.
	Delete(ctx context.Context, id user.ID) error
	// Search lists accounts newest first. Query matches a case-insensitive substring of the
	// email or the name, taken literally (no wildcards). Before, when set, starts after that id.
	Search(ctx context.Context, q UserQuery) ([]*user.User, error)
	// CountAdminsForUpdate counts admins and, where the database supports it, locks their rows
	// until the transaction ends, so two concurrent demotions cannot both pass the last-admin
	// check.
	CountAdminsForUpdate(ctx context.Context) (int, error)
	// BumpPostsVersion increments the user's posts version; called in the same transaction as
	// every post write.
	BumpPostsVersion(ctx context.Context, id user.ID) error
}

// UserQuery filters and pages the user directory.
type UserQuery struct {
	Query  string
	Before user.ID
	Limit  int
}

// PostRepository stores posts. Every read and delete is scoped to an author, so one user can
// never reach another's post through it.
type PostRepository interface {
	Add(ctx context.Context, p *post.Post) error
	// ByID returns post.ErrNotFound when absent or owned by someone else.
	ByID(ctx context.Context, author user.ID, id post.ID) (*post.Post, error)
	// Delete returns post.ErrNotFound when absent or owned by someone else.
	Delete(ctx context.Context, author user.ID, id post.ID) error
	// ListByAuthor returns at most limit posts of author, newest (highest id) first, with ids
	// below before when before is not empty.
	ListByAuthor(ctx context.Context, author user.ID, before post.ID, limit int) ([]*post.Post, error)
	// DeleteByAuthor removes every post of author.
	DeleteByAuthor(ctx context.Context, author user.ID) error
}

// SessionRepository stores login sessions.
type SessionRepository interface {
	Add(ctx context.Context, s *session.Session) error
	// ByID returns session.ErrNotFound when absent (revoked sessions are still returned).
	ByID(ctx context.Context, id session.ID) (*session.Session, error)
	// Update saves the refresh hash, rotation time and revocation.
	Update(ctx context.Context, s *session.Session) error
	// RevokeAllForUser revokes every active session of a user.
	RevokeAllForUser(ctx context.Context, userID user.ID, now time.Time) error
	// Principal returns the caller behind an active session (not revoked, not expired, user
	// still present) with the user's current role and posts version, in one indexed query:
	// it runs on every authenticated request. session.ErrNotFound otherwise.
	Principal(ctx context.Context, id session.ID, now time.Time) (session.Principal, error)
}
