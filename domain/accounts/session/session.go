// Package session is the login session aggregate: what a refresh token and the access tokens
// issued from it belong to, and what logout or reuse detection revokes.
package session

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/identity"
)

var (
	// ErrNotFound: no session with that id, or it is revoked, expired, or its user is gone.
	// Use cases turn it into the answer that fits (unauthenticated, invalid refresh token);
	// it is not meant to reach a client, so it does not describe itself.
	ErrNotFound = errors.New("session not found")
	// ErrInvalidRefreshToken: the refresh token is unknown, malformed, retired or expired.
	ErrInvalidRefreshToken = domain.NewError(domain.KindUnauthenticated, "invalid_refresh_token",
		"The refresh token is invalid, expired or already used.")
)

// ID identifies a session; access tokens carry it as their "sid" claim.
type ID string

// Session is one login. Only hashes are kept: of the current refresh token, and of the
// family secret that every refresh token of this login carries.
type Session struct {
	id          ID
	userID      identity.UserID
	refreshHash string
	familyHash  string // empty for sessions opened before families existed
	createdAt   time.Time
	expiresAt   time.Time
	revokedAt   *time.Time
	rotatedAt   time.Time
}

// New opens a session for a user and returns it with its first plain refresh token, which is
// shown to the client once and never stored.
func New(id ID, userID identity.UserID, now time.Time, ttl time.Duration) (*Session, string, error) {
	if id == "" || userID == "" {
		return nil, "", errors.New("session: empty id or user")
	}
	now = now.UTC()
	s := &Session{id: id, userID: userID, createdAt: now, expiresAt: now.Add(ttl), rotatedAt: now}
	var family [familyBytes]byte
	if _, err := rand.Read(family[:]); err != nil {
		return nil, "", err
	}
	f := base64.RawURLEncoding.EncodeToString(family[:])
	s.familyHash = HashRefreshToken(f)
	token, err := s.newRefreshToken(f)
	if err != nil {
		return nil, "", err
	}
	return s, token, nil
}

// Rehydrate rebuilds a session from storage. familyHash is empty for a session opened before
// refresh-token families existed.
func Rehydrate(id ID, userID identity.UserID, refreshHash, familyHash string, createdAt, expiresAt, rotatedAt time.Time, revokedAt *time.Time) *Session {
	s := &Session{id: id, userID: userID, refreshHash: refreshHash, familyHash: familyHash,
		createdAt: createdAt.UTC(), expiresAt: expiresAt.UTC(), rotatedAt: rotatedAt.UTC()}
	if revokedAt != nil {
		t := revokedAt.UTC()
		s.revokedAt = &t
	}
	return s
}

func (s *Session) ID() ID                  { return s.id }
func (s *Session) UserID() identity.UserID { return s.userID }
func (s *Session) RefreshHash() string     { return s.refreshHash }
func (s *Session) FamilyHash() string      { return s.familyHash }
func (s *Session) CreatedAt() time.Time    { return s.createdAt }
func (s *Session) ExpiresAt() time.Time    { return s.expiresAt }
func (s *Session) RotatedAt() time.Time    { return s.rotatedAt }
func (s *Session) RevokedAt() *time.Time   { return s.revokedAt }

// Active reports whether the session may still be used at now.
func (s *Session) Active(now time.Time) bool {
	return s.revokedAt == nil && now.Before(s.expiresAt)
}

// Revoke ends the session; revoking twice keeps the first time.
func (s *Session) Revoke(now time.Time) {
	if s.revokedAt == nil {
		t := now.UTC()
		s.revokedAt = &t
	}
}

// ErrReuse is returned by Rotate when the presented token was valid once but has been
// retired: someone replayed an old token, so the whole session must be revoked.
var ErrReuse = fmt.Errorf("refresh token reused: %w", ErrInvalidRefreshToken)

// Rotate checks the presented plain refresh token and, when it is the current one, retires it
// and returns its successor. A token of this session's family that is not the current one was
// issued and retired: it is ErrReuse and revokes the session. A token that only names the
// session (the id is no secret: every access token shows it) without its family was never
// issued for it, and is refused without touching the session, so nobody can log a user out
// by forging one. Sessions without a family (opened before families existed) revoke on any
// mismatch, as they always did.
func (s *Session) Rotate(presented string, now time.Time) (string, error) {
	if !s.Active(now) {
		return "", ErrInvalidRefreshToken
	}
	_, family, _, err := parseRefreshToken(presented)
	if err != nil {
		return "", ErrInvalidRefreshToken
	}
	if s.familyHash != "" && subtle.ConstantTimeCompare([]byte(HashRefreshToken(family)), []byte(s.familyHash)) != 1 {
		return "", ErrInvalidRefreshToken
	}
	if subtle.ConstantTimeCompare([]byte(HashRefreshToken(presented)), []byte(s.refreshHash)) != 1 {
		s.Revoke(now)
		return "", ErrReuse
	}
	s.rotatedAt = now.UTC()
	if s.familyHash == "" {
		// A session from before families: it gets one now, and its tokens carry it from here on.
		var f [familyBytes]byte
		if _, err := rand.Read(f[:]); err != nil {
			return "", err
		}
		family = base64.RawURLEncoding.EncodeToString(f[:])
		s.familyHash = HashRefreshToken(family)
	}
	return s.newRefreshToken(family)
}

// IssuedFor reports whether presented is a refresh token of this session's login, current or
// retired: it names the session and carries its family (for a session opened before families
// existed, it is the current token). The session id alone proves nothing, since every access
// token shows it, so a token that only names the session is not one of its tokens.
func (s *Session) IssuedFor(presented string) bool {
	id, family, _, err := parseRefreshToken(presented)
	if err != nil || id != s.id {
		return false
	}
	if s.familyHash == "" {
		return subtle.ConstantTimeCompare([]byte(HashRefreshToken(presented)), []byte(s.refreshHash)) == 1
	}
	return family != "" && subtle.ConstantTimeCompare([]byte(HashRefreshToken(family)), []byte(s.familyHash)) == 1
}

const (
	familyBytes = 16 // 128 bits: the family secret
	secretBytes = 32 // 256 bits: each token's own secret
)

var (
	familyLen = base64.RawURLEncoding.EncodedLen(familyBytes)
	secretLen = base64.RawURLEncoding.EncodedLen(secretBytes)
)

// newRefreshToken makes a token "<session id>.<family>.<32 random bytes>" and keeps only its
// hash. Carrying the session id lets a retired token be traced to its session for reuse
// detection; carrying the family proves it was issued for that session.
func (s *Session) newRefreshToken(family string) (string, error) {
	var secret [secretBytes]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", err
	}
	token := string(s.id) + "." + family + "." + base64.RawURLEncoding.EncodeToString(secret[:])
	s.refreshHash = HashRefreshToken(token)
	return token, nil
}

// parseRefreshToken splits "<id>.<family>.<secret>", or the older "<id>.<secret>" (family
// empty). The id must be one this service could have issued (printable ASCII, no spaces:
// MySQL's comparison ignores trailing spaces, so "<id> " would otherwise find the session).
func parseRefreshToken(token string) (id ID, family, secret string, err error) {
	rawID, rest, ok := strings.Cut(token, ".")
	if !ok || rawID == "" || len(rawID) > 64 {
		return "", "", "", ErrInvalidRefreshToken
	}
	for i := range len(rawID) {
		if c := rawID[i]; c <= ' ' || c > '~' {
			return "", "", "", ErrInvalidRefreshToken
		}
	}
	if f, sec, ok := strings.Cut(rest, "."); ok {
		family, secret = f, sec
		if len(family) != familyLen {
			return "", "", "", ErrInvalidRefreshToken
		}
	} else {
		secret = rest
	}
	if len(secret) != secretLen {
		return "", "", "", ErrInvalidRefreshToken
	}
	return ID(rawID), family, secret, nil
}

// HashRefreshToken is the stored form of a refresh token. The token has 256 bits of entropy,
// so a fast hash is enough: nobody can brute-force it from the hash.
func HashRefreshToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// SessionIDFromRefreshToken extracts the session id a refresh token names.
func SessionIDFromRefreshToken(token string) (ID, error) {
	id, _, _, err := parseRefreshToken(token)
	return id, err
}
