package accounts

import (
	"context"
	"time"

	"github.com/acme/postsvc/domain/accounts/apikey"
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
	APIKeys(tx ports.Scope) APIKeyRepository
}

// UserRepository stores accounts. Every method wraps domain.ErrUnavailable when the database
// cannot be reached.
type UserRepository interface {
	// Add inserts u; user.ErrEmailTaken when the normalised email exists (from the unique
	// index, never from a prior lookup).
	Add(ctx context.Context, u *user.User) error
	// ByID returns user.ErrNotFound when absent.
	ByID(ctx context.Context, id identity.UserID) (*user.User, error)
	// ByIDForUpdate reads as ByID does and locks the user's row until the unit of work
	// ends: a concurrent change of the user waits for it and then reads what it committed.
	// Every read-modify-write of a user reads this way, so a rename that started before a
	// role change commits can never write the old role back over it.
	ByIDForUpdate(ctx context.Context, id identity.UserID) (*user.User, error)
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
	// Add inserts s; user.ErrNotFound when its user does not exist.
	Add(ctx context.Context, s *session.Session) error
	// ByID returns session.ErrNotFound when absent (revoked sessions are still returned).
	ByID(ctx context.Context, id session.ID) (*session.Session, error)
	// ByIDForUpdate reads as ByID does and locks the session's row until the unit of work
	// ends, so that the read-modify-write of a rotation or a revocation sees the session as
	// the last one committed left it: two refreshes with one token run one after the other,
	// and the second finds the token retired.
	ByIDForUpdate(ctx context.Context, id session.ID) (*session.Session, error)
	// Update saves the refresh hash, rotation time and revocation.
	Update(ctx context.Context, s *session.Session) error
	// RevokeAllForUser revokes every active session of a user.
	RevokeAllForUser(ctx context.Context, userID identity.UserID, now time.Time) error
	// Principal returns the caller behind an active session (not revoked, not expired, user
	// still present) with the user's current role, in one indexed query: it runs on every
	// authenticated request. session.ErrNotFound otherwise.
	Principal(ctx context.Context, id session.ID, now time.Time) (identity.Principal, error)
}

// APIKeyRepository stores personal API keys. Every method wraps domain.ErrUnavailable when the
// database cannot be reached. Ids that could never have been issued (any shape, any length)
// are simply not found.
type APIKeyRepository interface {
	// Add inserts k; user.ErrNotFound when its user does not exist.
	Add(ctx context.Context, k *apikey.Key) error
	// ListByUser returns every key of the user, expired ones included, newest first.
	ListByUser(ctx context.Context, userID identity.UserID) ([]*apikey.Key, error)
	// Delete removes the user's key id; apikey.ErrNotFound when the user has no such key
	// (another user's key included).
	Delete(ctx context.Context, userID identity.UserID, id apikey.ID) error
	// CountActiveForUpdate locks the user's row until the transaction ends, then counts the
	// user's keys still active at now; user.ErrNotFound when the user does not exist. The lock
	// is the one every write of the user takes first (ports.Stamps), so concurrent creations
	// for one user queue and each counts what the previous ones committed.
	CountActiveForUpdate(ctx context.Context, userID identity.UserID, now time.Time) (int, error)
	// Principal returns the owner of the key whose secret hashes to hash, if the key is active
	// at now and its user still exists, with the user's current role and stamps, in one indexed
	// query: it runs on every request made with a key. apikey.ErrNotFound otherwise.
	Principal(ctx context.Context, hash string, now time.Time) (identity.Principal, error)
	// RecordUses sets each key's last_used_at to its time in uses, in one statement for a
	// batch, unless the stored time is already later (it never moves backwards). Keys deleted
	// meanwhile are skipped.
	RecordUses(ctx context.Context, uses map[apikey.ID]time.Time) error
}
