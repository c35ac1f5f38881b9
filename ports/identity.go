package ports

import (
	"context"

	"github.com/acme/postsvc/domain/identity"
)

// Authenticator turns a credential presented with a request (the token of an Authorization:
// Bearer header) into the caller's principal, checked against the current state: a revoked
// credential, a deleted account or a changed role shows on the very next request. Several
// credential schemes (session access tokens, personal API keys) each implement it; the HTTP
// kernel asks the one whose Accepts says the credential is its kind.
type Authenticator interface {
	// Accepts reports whether credential has this scheme's shape (a JWT, a "pat_" key); it
	// does no verification.
	Accepts(credential string) bool
	// Authenticate verifies credential. A credential that is not (or no longer) valid is an
	// error wrapping domain.ErrUnauthenticated; an outage wraps domain.ErrUnavailable.
	Authenticate(ctx context.Context, credential string) (identity.Principal, error)
}

// UserDataOwner is a context that keeps data of users. Deleting a user calls every owner: the
// rows go in the deleting transaction, and what lives outside the database (cache entries,
// stored objects) is cleaned after the commit by a durable job, retried until it succeeds, so
// nothing is left behind if the process dies in between. The accounts context deletes the user
// without knowing which contexts exist.
type UserDataOwner interface {
	// DeleteUserData deletes the user's rows of this context in tx, the deleting transaction.
	DeleteUserData(ctx context.Context, tx Scope, user identity.UserID) error
	// CleanUpUser removes what this context keeps of the user outside the database. It runs
	// after the commit, may run more than once, and must succeed when there is nothing left.
	CleanUpUser(ctx context.Context, user identity.UserID) error
}

// Stamps are per-user change counters kept by the shared kernel for any context that caches
// a user's data (see identity.Principal.Stamps); a scope names the context's counter.
type Stamps interface {
	// Bump increments the user's counter of scope in tx, the transaction of the write it
	// stamps. Bump before the write: it takes the user's stamp lock first, so concurrent
	// writers of one user queue instead of deadlocking. identity.ErrUnknownUser when the user
	// does not exist.
	Bump(ctx context.Context, tx Scope, user identity.UserID, scope string) error
}

// PageRequest asks any list use case for one page. Limit 0 means the default; Cursor ""
// means the first page.
type PageRequest struct {
	Cursor string
	Limit  int
}

// StampBoard is where instances publish and read users' committed stamps, so that a principal
// can be served from process memory and still reflect every write on any instance: a cached
// principal is used only while the user's "auth" stamp on the board is the one it was read
// with, and its other stamps come from the board. The board is shared through Redis when
// instances share a database, or kept in process memory when the process is alone (SQLite).
// Without one (nil: several instances and no Redis) every request reads the database.
type StampBoard interface {
	// Read returns the user's stamps as published, reflecting every publication answered
	// before Read was called. ok is false when the board cannot vouch for them: nothing is
	// published for the user, or the shared store cannot be reached in time. The caller then
	// reads the database and publishes what it read.
	Read(ctx context.Context, user identity.UserID) (stamps identity.Stamps, ok bool)
	// Publish records stamps committed for user; each scope's counter only moves forward,
	// so publications may arrive in any order. It returns once the board has them, or has
	// given up: a board that cannot reach its store retries on its own, vouches for nothing
	// meanwhile, and returns only once every other instance's board will have moved its
	// generation by its next Read (so what they kept is read again).
	Publish(ctx context.Context, user identity.UserID, stamps identity.Stamps)
	// Generation changes whenever the board may have missed publications (its connection
	// broke, its store came back): whatever was cached against an older generation must be
	// read again.
	Generation() uint64
}

// StampScopeAuth is the stamp every change to a user's credentials or role bumps: logout,
// refresh-token reuse, role change, deletion, API key revocation. A principal kept in memory is
// valid while this stamp is unchanged.
const StampScopeAuth = "auth"
