// Package apikey is the personal API key aggregate: a long-lived secret that acts as its
// owner, with the owner's current role, for scripts and devices that cannot keep a login
// session. Only a hash of the secret is kept; the secret is shown once, when the key is made.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/domain/identity"
)

// Limits of a key.
const (
	// SecretPrefix starts every secret, so that secret scanners (and people) recognise one.
	SecretPrefix = "pat_"
	// secretBytes is the randomness of a secret: 256 bits.
	secretBytes = 32
	// SecretLength is the length of a secret: the prefix and 32 bytes in unpadded base64url.
	SecretLength = len(SecretPrefix) + 43
	// PrefixLength is how much of the secret is kept in clear and shown in lists, so that
	// people can tell their keys apart: "pat_" and 8 characters (48 bits), far too few to
	// help anyone guess the rest.
	PrefixLength = 12
	// MaxNameChars is the longest name, in characters.
	MaxNameChars = 100
	// MaxExpiryDays is the longest lifetime a key may be given.
	MaxExpiryDays = 365
	// MaxActivePerUser is how many keys that have not expired one user may hold.
	MaxActivePerUser = 25
)

var (
	// ErrNotFound: no key with that id among the caller's keys. Another user's key is
	// indistinguishable from a missing one.
	ErrNotFound = domain.NewError(domain.KindNotFound, "api_key_not_found", "There is no such API key.")
	// ErrTooMany: the user already holds MaxActivePerUser keys that have not expired.
	ErrTooMany = domain.NewError(domain.KindConflict, "too_many_keys",
		"You already have 25 active API keys; delete one before creating another.")
	// ErrMalformedSecret: the credential does not have the shape of a secret this service
	// makes, so no lookup is needed to refuse it.
	ErrMalformedSecret = errors.New("apikey: malformed secret")
)

// ID identifies a key; it is not secret (lists show it, and deleting a key names it).
type ID string

// Key is one personal API key. Its fields are unexported so it cannot be built or changed into
// an invalid state: New makes a key (and its secret), Rehydrate rebuilds a stored one.
type Key struct {
	id         ID
	userID     identity.UserID
	name       string
	prefix     string
	hash       string
	createdAt  time.Time
	expiresAt  *time.Time
	lastUsedAt *time.Time
}

// ParseName trims a key's name and checks it: 1 to 100 characters, the display-name rules of
// accounts otherwise (valid UTF-8, Unicode NFC, no invisible or control characters).
func ParseName(raw string) (string, error) {
	name, err := user.ParseName(raw)
	if err != nil {
		return "", err
	}
	if name == "" {
		return "", domain.Invalid("name", "is required")
	}
	return name, nil
}

// ParseExpiry checks the requested lifetime in days: nil (the key never expires) or 1 to 365.
func ParseExpiry(days *int) (time.Duration, error) {
	if days == nil {
		return 0, nil
	}
	if *days < 1 || *days > MaxExpiryDays {
		return 0, domain.Invalid("expires_in_days", "must be from 1 to 365 days")
	}
	return time.Duration(*days) * 24 * time.Hour, nil
}

// New makes a key named rawName for userID, expiring expiresInDays days after now (never when
// nil), and returns it with its secret: shown to the owner once and never stored. Every
// invalid field is reported at once.
func New(id ID, userID identity.UserID, rawName string, expiresInDays *int, now time.Time) (*Key, string, error) {
	if id == "" || userID == "" {
		return nil, "", errors.New("apikey: empty id or user")
	}
	var v domain.Validator
	name, err := ParseName(rawName)
	v.Check(err)
	lifetime, err := ParseExpiry(expiresInDays)
	v.Check(err)
	if err := v.Err(); err != nil {
		return nil, "", err
	}
	var raw [secretBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, "", err
	}
	secret := SecretPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	now = now.UTC()
	k := &Key{id: id, userID: userID, name: name, prefix: secret[:PrefixLength], hash: HashSecret(secret), createdAt: now}
	if lifetime > 0 {
		exp := now.Add(lifetime)
		k.expiresAt = &exp
	}
	return k, secret, nil
}

// Rehydrate rebuilds a key from storage, which holds only what New once validated.
func Rehydrate(id ID, userID identity.UserID, name, prefix, hash string, createdAt time.Time, expiresAt, lastUsedAt *time.Time) *Key {
	return &Key{
		id: id, userID: userID, name: name, prefix: prefix, hash: hash, createdAt: createdAt.UTC(),
		expiresAt: utcPtr(expiresAt), lastUsedAt: utcPtr(lastUsedAt),
	}
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.UTC()
	return &v
}

func (k *Key) ID() ID                  { return k.id }
func (k *Key) UserID() identity.UserID { return k.userID }
func (k *Key) Name() string            { return k.name }
func (k *Key) Prefix() string          { return k.prefix }
func (k *Key) Hash() string            { return k.hash }
func (k *Key) CreatedAt() time.Time    { return k.createdAt }

// ExpiresAt is nil for a key that never expires.
func (k *Key) ExpiresAt() *time.Time { return k.expiresAt }

// LastUsedAt is nil for a key never used (or whose uses are not recorded yet).
func (k *Key) LastUsedAt() *time.Time { return k.lastUsedAt }

// Active reports whether the key may be used at now: it has no expiry, or now is before it.
func (k *Key) Active(now time.Time) bool {
	return k.expiresAt == nil || now.Before(*k.expiresAt)
}

// HashSecret is the stored form of a secret: hex SHA-256. A fast hash is right here, unlike
// for passwords: the secret is 256 random bits, so nobody can find it from its hash by trying
// candidates, and every request that presents a key computes it.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// LooksLikeSecret reports whether credential starts like a key's secret (SecretPrefix). It does
// no verification: the credential scheme uses it to tell keys from access tokens.
func LooksLikeSecret(credential string) bool {
	return strings.HasPrefix(credential, SecretPrefix)
}

// ParseSecret checks that credential has exactly the shape New gives a secret and returns its
// hash; ErrMalformedSecret otherwise, without any lookup.
func ParseSecret(credential string) (string, error) {
	rest, ok := strings.CutPrefix(credential, SecretPrefix)
	if !ok || len(credential) != SecretLength {
		return "", ErrMalformedSecret
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil || len(raw) != secretBytes {
		return "", ErrMalformedSecret
	}
	return HashSecret(credential), nil
}
