package user

import (
	"unicode/utf8"

	"github.com/acme/postsvc/domain"
)

// Password limits. Long passphrases are welcome; the byte cap only stops a request from
// making the server hash megabytes. Nothing is ever truncated.
const (
	MinPasswordChars = 8
	MaxPasswordBytes = 1024
)

// ValidatePassword checks a plain-text password against the policy. It never returns or logs
// the password itself.
func ValidatePassword(plain string) error {
	switch {
	case !utf8.ValidString(plain):
		return domain.Invalid("password", "must be valid UTF-8")
	case utf8.RuneCountInString(plain) < MinPasswordChars:
		return domain.Invalid("password", "must be at least 8 characters")
	case len(plain) > MaxPasswordBytes:
		return domain.Invalid("password", "must be at most 1024 bytes")
	}
	return nil
}

// PasswordHash is an encoded password hash (for argon2id, the PHC string). It is opaque to the
// domain; only the hasher port reads it.
type PasswordHash string
