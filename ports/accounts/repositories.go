package accounts

import (
	"context"
	"time"

	"github.com/acme/postsvc/domain/accounts/session"
	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
)

// Store builds the accounts context's repositories on a storage scope: the transaction of a
// unit of work, or the pool (ports.UnitOfWork.Pool).
type Store interface {
	Users(tx ports.Scope) UserRepository
	Sessions(tx ports.Scope) SessionRepository
}

// UserRepository stores accounts. Every method wraps domain.ErrUnavailable when the database
// cannot be reached.
type UserRepository interface {
	// Add inserts u; user.ErrEmailTaken when the normalised email exists (from the unique
	// index, never from a prior lookup).
	Add(ctx context.Context, u *user.User) error
	// ByID returns user.ErrNotFound when absent.
	ByID(ctx context.Context, id identity.UserID) (*user.User, error)
	// ByEmail returns user.ErrNotFound when absent.
	ByEmail(ctx context.Context, email user.Email) (*user.User, error)
	// Update saves name, role and updated_at; user.ErrNotFound when absent.
	Update(ctx context.Context, u *user.User) error
	// Delete removes the account row; user.ErrNotFound when absent.
	Delete(ctx context.Context, id identity.UserID) error
	// Search lists accounts newest first. Query matches a case-insensitive substring of the
	// email or the name, taken literally (no wildcards). Before, when set, starts after that id.
	Search(ctx context.Context, q UserQuery) ([]*user.User, error)
	// CountAdminsForUpdate counts admins and, where the database supports it, locks their rows
	// until the transaction ends, so two concurrent demotions cannot both pass the last-admin
	// check.
	CountAdminsForUpdate(ctx context.Context) (int, error)
}

// UserQuery filters and pages the user directory.
type UserQuery struct {
	Query  string
	Before identity.UserID
	Limit  int
}

// SessionRepository stores login sessions.
type SessionRepository interface {
	Add(ctx context.Context, s *session.Session) error
	// ByID returns session.ErrNotFound when absent (revoked sessions are still returned).
	ByID(ctx context.Context, id session.ID) (*session.Session, error)
	// Update saves the refresh hash, rotation time and revocation.
	Update(ctx context.Context, s *session.Session) error
	// RevokeAllForUser revokes every active session of a user.
	RevokeAllForUser(ctx context.Context, userID identity.UserID, now time.Time) error
	// Principal returns the caller behind an active session (not revoked, not expired, user
	// still present) with the user's current role, in one indexed query: it runs on every
	// authenticated request. session.ErrNotFound otherwise.
	Principal(ctx context.Context, id session.ID, now time.Time) (identity.Principal, error)
}
