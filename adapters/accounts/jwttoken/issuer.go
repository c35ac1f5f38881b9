// Package jwttoken issues and verifies the service's access tokens as HS256-signed JWTs.
package jwttoken

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/acme/postsvc/ports/accounts"

	"github.com/golang-jwt/jwt/v5"

	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/accounts/session"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
)

const (
	// DefaultTTL is the access-token lifetime used when none is configured.
	DefaultTTL = 15 * time.Minute
	// Leeway tolerates small clock differences between instances when checking exp and iat.
	// It is kept far below the token lifetime so it cannot meaningfully extend a token.
	Leeway = 5 * time.Second
	// maxTokenBytes rejects absurd inputs before any decoding work; real tokens are about 300
	// bytes.
	maxTokenBytes = 4096
)

// ErrNoSecret is returned when the issuer has no signing secret. Signing with an empty HMAC
// key would produce tokens anybody can forge, so the issuer refuses instead.
var ErrNoSecret = errors.New("jwttoken: no signing secret configured")

// claims is the token payload: the registered claims plus the session id. A typed struct lets
// the library decode straight into checked fields, so no type assertion on a map is needed.
type claims struct {
	jwt.RegisteredClaims
	SessionID string `json:"sid"`
}

// Issuer implements accounts.TokenIssuer with a shared HMAC secret. Every instance of the service
// must use the same secret, issuer and audience for tokens to be accepted across instances.
type Issuer struct {
	key      []byte
	issuer   string
	audience string
	ttl      time.Duration
	clock    ports.Clock
	parser   *jwt.Parser

	// verified remembers the claims of tokens whose signature and claims were checked, so a
	// token seen again costs a map lookup and a time comparison instead of an HMAC and a JSON
	// decode (about a tenth of the server's time on a cached list). Only the exact string
	// that was verified can hit, and its time limits are judged again on every hit.
	mu       sync.RWMutex
	verified map[string]verifiedToken
}

// verifiedToken is what a hit of Issuer.verified needs to judge the token's times again.
type verifiedToken struct {
	claims   accounts.AccessClaims
	issuedAt time.Time
}

// maxVerified bounds Issuer.verified: past it, it starts again empty (a few MB at most).
const maxVerified = 20_000

var _ accounts.TokenIssuer = (*Issuer)(nil)

// NewIssuer builds an issuer from the auth settings. The parser accepts exactly HS256 and
// requires exp, the configured iss and aud, and an iat that is not in the future, all judged
// by clock so tests can move time.
func NewIssuer(cfg config.Auth, clock ports.Clock) *Issuer {
	ttl := cfg.AccessTokenTTL
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Issuer{
		key:      []byte(cfg.JWTSecret),
		issuer:   cfg.JWTIssuer,
		audience: cfg.JWTAudience,
		ttl:      ttl,
		clock:    clock,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithExpirationRequired(),
			jwt.WithIssuer(cfg.JWTIssuer),
			jwt.WithAudience(cfg.JWTAudience),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(Leeway),
			jwt.WithTimeFunc(clock.Now),
			// Strict decoding refuses non-canonical base64, so a token has one accepted
			// spelling and a flipped padding bit cannot yield a second valid form.
			jwt.WithStrictDecoding(),
		),
	}
}

// Issue signs an access token for the session and returns it with its lifetime.
func (i *Issuer) Issue(userID identity.UserID, sessionID session.ID) (string, time.Duration, error) {
	if len(i.key) == 0 {
		return "", 0, ErrNoSecret
	}
	if userID == "" || sessionID == "" {
		return "", 0, errors.New("jwttoken: empty user or session id")
	}
	jti, err := newTokenID()
	if err != nil {
		return "", 0, err
	}
	now := i.clock.Now()
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   string(userID),
			Issuer:    i.issuer,
			Audience:  jwt.ClaimStrings{i.audience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(i.ttl)),
			ID:        jti,
		},
		SessionID: string(sessionID),
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(i.key)
	if err != nil {
		return "", 0, fmt.Errorf("jwttoken: signing: %w", err)
	}
	return signed, i.ttl, nil
}

// Verify checks the token and returns its claims. Every failure wraps
// domain.ErrUnauthenticated; the wrapped library error says why, for logs only.
func (i *Issuer) Verify(token string) (accounts.AccessClaims, error) {
	if len(i.key) == 0 {
		return accounts.AccessClaims{}, fmt.Errorf("%w: %w", domain.ErrUnauthenticated, ErrNoSecret)
	}
	if token == "" || len(token) > maxTokenBytes {
		return accounts.AccessClaims{}, fmt.Errorf("%w: token empty or too long", domain.ErrUnauthenticated)
	}
	i.mu.RLock()
	v, ok := i.verified[token]
	i.mu.RUnlock()
	if ok {
		// The parser's own rules: exp is exclusive, both with the leeway.
		now := i.clock.Now()
		if now.Add(-Leeway).Before(v.claims.ExpiresAt) && !v.issuedAt.After(now.Add(Leeway)) {
			return v.claims, nil
		}
	}
	var c claims
	_, err := i.parser.ParseWithClaims(token, &c, i.keyFor)
	if err != nil {
		return accounts.AccessClaims{}, fmt.Errorf("%w: %w", domain.ErrUnauthenticated, err)
	}
	if c.Subject == "" || c.SessionID == "" {
		return accounts.AccessClaims{}, fmt.Errorf("%w: token lacks sub or sid", domain.ErrUnauthenticated)
	}
	// WithExpirationRequired guarantees exp is present once parsing succeeded; the check is
	// repeated so a library change can never turn into a nil dereference.
	if c.ExpiresAt == nil {
		return accounts.AccessClaims{}, fmt.Errorf("%w: token lacks exp", domain.ErrUnauthenticated)
	}
	out := accounts.AccessClaims{
		UserID:    identity.UserID(c.Subject),
		SessionID: session.ID(c.SessionID),
		ExpiresAt: c.ExpiresAt.UTC(),
	}
	if c.IssuedAt != nil {
		i.mu.Lock()
		if i.verified == nil || len(i.verified) >= maxVerified {
			i.verified = make(map[string]verifiedToken)
		}
		i.verified[token] = verifiedToken{claims: out, issuedAt: c.IssuedAt.Time}
		i.mu.Unlock()
	}
	return out, nil
}

// keyFor hands the HMAC key to the library only for HS256. WithValidMethods already refuses
// other algorithms; checking the concrete method again keeps the key from ever reaching an
// asymmetric verifier, the classic algorithm-confusion mistake.
func (i *Issuer) keyFor(t *jwt.Token) (any, error) {
	if t.Method != jwt.SigningMethodHS256 {
		return nil, fmt.Errorf("unexpected signing method %q", t.Method.Alg())
	}
	return i.key, nil
}

// newTokenID returns 128 random bits for the jti claim, which makes every token unique even
// when two are issued for one session in the same second.
func newTokenID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("jwttoken: reading random jti: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
