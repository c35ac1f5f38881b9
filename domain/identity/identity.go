// Package identity is the identity kernel every bounded context shares: who a user is (an id
// and a role) and who is calling (the principal). It knows nothing of any context's data:
// each context keeps its own tables, keyed by the user id, and its own freshness information.
package identity

import (
	"errors"
	"time"

	"github.com/acme/postsvc/domain"
)

// UserID identifies an account. It is an opaque, time-ordered string.
type UserID string

// Role decides what an account may do. Users hold content; admins manage accounts and hold
// no content.
type Role string

// The roles.
const (
	RoleUser  Role = "user"
	RoleAdmin Role = "admin"
)

// ParseRole accepts exactly "user" or "admin".
func ParseRole(raw string) (Role, error) {
	switch Role(raw) {
	case RoleUser, RoleAdmin:
		return Role(raw), nil
	}
	return "", domain.Invalid("role", `must be "user" or "admin"`)
}

// IsAdmin reports whether r is the administrator role.
func (r Role) IsAdmin() bool { return r == RoleAdmin }

// ErrUnknownUser: no account with that id. Every context meets it when a row of its own
// names a user that does not exist (a post's author deleted meanwhile); the accounts context
// answers it for its own lookups too (user.ErrNotFound is this error).
var ErrUnknownUser = domain.NewError(domain.KindNotFound, "user_not_found", "There is no such user.")

// AsCaller reports err as a use case that acted on the caller's own data must: there,
// ErrUnknownUser can only mean that the caller's account was deleted while the request ran
// (the credential was checked before), so the credential no longer stands and the caller gets
// what its next request would get, domain.ErrUnauthenticated, not "no such user". Every other
// error, nil included, is returned unchanged.
func AsCaller(err error) error {
	if errors.Is(err, ErrUnknownUser) {
		return domain.ErrUnauthenticated
	}
	return err
}

// CredentialKind names how a caller proved who it is.
type CredentialKind string

// The credential kinds. A session is a login (an access token names it); a personal API key
// acts as its owner without a session.
const (
	CredentialSession CredentialKind = "session"
	CredentialAPIKey  CredentialKind = "api_key"
)

// Credential is what a caller authenticated with: its kind and the id of the session or key.
type Credential struct {
	Kind CredentialKind
	ID   string
	// ExpiresAt is when the credential stops being valid whatever happens meanwhile (the
	// session's end, the key's expiry); zero for a credential that does not expire.
	ExpiresAt time.Time
}

// Principal is the authenticated caller as the service sees it right now: checked on every
// request, so a revoked credential, a deleted account or a role change takes effect at once.
type Principal struct {
	UserID     UserID
	Role       Role
	Credential Credential
	// Stamps are the user's change counters, read with the credential: each context that
	// caches a user's data keys it by its own scope's counter, which it bumps with every
	// write, so a cache entry older than the user's last committed write is never served,
	// whichever instance made the write.
	Stamps Stamps
}

// Stamp returns the principal's counter of scope, 0 when the scope was never bumped.
func (p Principal) Stamp(scope string) int64 { return p.Stamps.Get(scope) }

// ErrSessionRequired: the operation manages sessions or keys, which only a login session may
// do. A personal API key is refused (403 forbidden, like a role that does not allow it), so a
// leaked key cannot mint more keys, delete its owner's others or end the owner's session; the
// message says that it is the kind of credential, not the role, that does not allow it.
var ErrSessionRequired = domain.NewError(domain.KindForbidden, "forbidden",
	"This operation needs a login session: a personal API key cannot log out or manage API keys.")

// RequireContentOwner refuses principals that may hold no content (admins).
func RequireContentOwner(p Principal) error {
	if p.Role != RoleUser {
		return domain.ErrForbidden
	}
	return nil
}

// RequireAdmin refuses principals that are not admins.
func RequireAdmin(p Principal) error {
	if !p.Role.IsAdmin() {
		return domain.ErrForbidden
	}
	return nil
}
