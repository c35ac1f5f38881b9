package user

import (
	"net/mail"
	"strings"
	"unicode/utf8"

	"github.com/acme/postsvc/domain"
)

// MaxEmailLength is the longest address accepted (RFC 5321's path limit).
const MaxEmailLength = 254

// Email is a normalised address: trimmed and lower-cased, so that "A@X.io" and "a@x.io" are
// one account. The zero value is not a valid email.
type Email struct{ value string }

// ParseEmail trims and normalises raw and checks that it is a single bare address.
func ParseEmail(raw string) (Email, error) {
	// Validity first: ToLower would silently replace invalid bytes with U+FFFD.
	if !utf8.ValidString(raw) {
		return Email{}, domain.Invalid("email", "must be valid UTF-8")
	}
	s := strings.ToLower(strings.TrimSpace(raw))
	switch {
	case s == "":
		return Email{}, domain.Invalid("email", "is required")
	case len(s) > MaxEmailLength:
		return Email{}, domain.Invalid("email", "must be at most 254 characters")
	}
	addr, err := mail.ParseAddress(s)
	// ParseAddress also accepts "Name <a@b>" and comments; only a bare address that
	// round-trips unchanged is an email here.
	if err != nil || addr.Address != s || addr.Name != "" {
		return Email{}, domain.Invalid("email", "must be a valid email address")
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.ContainsAny(s, " \t\r\n") {
		return Email{}, domain.Invalid("email", "must be a valid email address")
	}
	return Email{value: s}, nil
}

// String returns the normalised address.
func (e Email) String() string { return e.value }

// IsZero reports whether e was never set.
func (e Email) IsZero() bool { return e.value == "" }
