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

// Session is one login. Only a hash of the current refresh token is kept.
type Session struct {
	id          ID
	userID      identity.UserID
	refreshHash string
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
	token, err := s.newRefreshToken()
	if err != nil {
		return nil, "", err
	}
	return s, token, nil
}

// Rehydrate rebuilds a session from storage.
func Rehydrate(id ID, userID identity.UserID, refreshHash string, createdAt, expiresAt, rotatedAt time.Time, revokedAt *time.Time) *Session {
	s := &Session{id: id, userID: userID, refreshHash: refreshHash, createdAt: createdAt.UTC(), expiresAt: expiresAt.UTC(), rotatedAt: rotatedAt.UTC()}
	if revokedAt != nil {
		t := revokedAt.UTC()
		s.revokedAt = &t
	}
	return s
}

func (s *Session) ID() ID                  { return s.id }
func (s *Session) UserID() identity.UserID { return s.userID }
func (s *Session) RefreshHash() string     { return s.refreshHash }
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
// and returns its successor. A token that names this session but is not the current one is
// ErrReuse and revokes the session.
func (s *Session) Rotate(presented string, now time.Time) (string, error) {
	if !s.Active(now) {
		return "", ErrInvalidRefreshToken
	}
	if subtle.ConstantTimeCompare([]byte(HashRefreshToken(presented)), []byte(s.refreshHash)) != 1 {
		s.Revoke(now)
		return "", ErrReuse
	}
	s.rotatedAt = now.UTC()
	return s.newRefreshToken()
}

// newRefreshToken makes a token "<session id>.<32 random bytes>" and keeps only its hash.
// Carrying the session id lets a retired token be traced to its session for reuse detection.
func (s *Session) newRefreshToken() (string, error) {
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", err
	}
	token := string(s.id) + "." + base64.RawURLEncoding.EncodeToString(secret[:])
	s.refreshHash = HashRefreshToken(token)
	return token, nil
}

// HashRefreshToken is the stored form of a refresh token. The token has 256 bits of entropy,
// so a fast hash is enough: nobody can brute-force it from the hash.
func HashRefreshToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// SessionIDFromRefreshToken extracts the session id a refresh token names.
func SessionIDFromRefreshToken(token string) (ID, error) {
	id, secret, ok := strings.Cut(token, ".")
	if !ok || id == "" || len(id) > 64 || len(secret) != 43 {
		return "", ErrInvalidRefreshToken
	}
	return ID(id), nil
}
