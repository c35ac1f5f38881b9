package ports

import (
	"context"
	"time"

	"github.com/acme/postsvc/domain/session"
	"github.com/acme/postsvc/domain/user"
)

// PasswordHasher hashes and verifies passwords. Implementations bound how many hashes run at
// once (they are memory-hard) and wait for a slot while ctx allows.
type PasswordHasher interface {
	Hash(ctx context.Context, plain string) (user.PasswordHash, error)
	// Verify compares plain with hash in constant time. A mismatch is (false, nil); a hash that
	// cannot be parsed is an error.
	Verify(ctx context.Context, hash user.PasswordHash, plain string) (bool, error)
}

// AccessClaims is what a verified access token says.
type AccessClaims struct {
	UserID    user.ID
	SessionID session.ID
	ExpiresAt time.Time
}

// TokenIssuer signs and verifies access tokens.
type TokenIssuer interface {
	// Issue signs a token for the session; it returns the token and its lifetime.
	Issue(userID user.ID, sessionID session.ID) (token string, lifetime time.Duration, err error)
	// Verify checks signature, algorithm, expiry, issuer and audience. Any failure wraps
	// domain.ErrUnauthenticated.
	Verify(token string) (AccessClaims, error)
}

// LoginThrottle slows password guessing. Keys name what is throttled ("account:<email>",
// "addr:<ip>"); an implementation may keep its state in memory or share it.
type LoginThrottle interface {
	// Check returns a *domain.ThrottledError when any of keys is blocked now.
	Check(ctx context.Context, keys ...string) error
	// Failure records a failed attempt against every key.
	Failure(ctx context.Context, keys ...string)
	// Success clears the recorded failures of keys.
	Success(ctx context.Context, keys ...string)
}
