package accounts

import (
	"context"
	"time"

	"github.com/acme/postsvc/domain/accounts/session"
	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/domain/identity"
)

// ClientKey names whom a password hash is computed for, so that the hasher can share its
// slots fairly: the client's network address for a request, LocalClient for work started on
// this machine. It is a type of its own so that it cannot be swapped with the password.
type ClientKey string

// LocalClient is the ClientKey of hashing that no network client asked for: the users create
// command and the bootstrap admin. No network address is spelt like it.
const LocalClient ClientKey = "local"

// PasswordHasher hashes and verifies passwords. Implementations bound how many hashes run at
// once (they are memory-hard) and share the slots fairly between clients. A caller waits for a
// slot while ctx allows, unless the work could not start soon: then it gets an error wrapping
// domain.ErrOverloaded at once.
type PasswordHasher interface {
	Hash(ctx context.Context, client ClientKey, plain string) (user.PasswordHash, error)
	// Verify compares plain with hash in constant time. A mismatch is (false, nil); a hash that
	// cannot be parsed is an error.
	Verify(ctx context.Context, client ClientKey, hash user.PasswordHash, plain string) (bool, error)
	// Reserve gives the next check of client its place now (a slot, or a place in the
	// queue), or returns at once the error wrapping domain.ErrOverloaded that sheds it. The
	// next Hash or Verify for client takes a place reserved for client instead of asking for
	// one, so it is not shed for the bounds of the queue. release gives the place back if no
	// check took it, and does nothing otherwise: call it when the caller is done, whatever
	// happened.
	//
	// It lets a caller shed a check before spending anything on it, such as a shared
	// throttle's round trips or a user lookup, and counts a burst of checks that arrive
	// together as they arrive: those admitted are not refused after that work.
	Reserve(ctx context.Context, client ClientKey) (release func(), err error)
}

// AccessClaims is what a verified access token says.
type AccessClaims struct {
	UserID    identity.UserID
	SessionID session.ID
	ExpiresAt time.Time
}

// TokenIssuer signs and verifies access tokens.
type TokenIssuer interface {
	// Issue signs a token for the session; it returns the token and its lifetime.
	Issue(userID identity.UserID, sessionID session.ID) (token string, lifetime time.Duration, err error)
	// Verify checks signature, algorithm, expiry, issuer and audience. Any failure wraps
	// domain.ErrUnauthenticated.
	Verify(token string) (AccessClaims, error)
}
