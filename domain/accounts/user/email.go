package user

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/acme/postsvc/domain"
)

// MaxEmailLength is the longest address accepted, in bytes of UTF-8 once normalised (RFC
// 5321's path limit is counted in octets).
const MaxEmailLength = 254

// Email is a normalised address: trimmed, in Unicode NFC and case folded, so that "A@X.io" and
// "a@x.io" are one account, and so are "ΟΔΥΣΣΕΥΣ@x.io" and "οδυσσευς@x.io", and so are "café@x.io" typed with a composed é (U+00E9) and with
// an e followed by a combining accent (U+0301). The zero value is not a valid email.
type Email struct{ value string }

// NormalizeEmail is the normalisation ParseEmail applies, without any validation: surrounding
// white space removed, Unicode NFC, case folded (domain.FoldCase: lower case, with final sigma
// ς written σ, long s ſ written s, and so on). Code that must key something by an address
// before (or without) parsing it, such as the login throttle, uses it so that every spelling
// of one address meets under one key.
func NormalizeEmail(raw string) string {
	// NFC before case folding makes canonically equivalent inputs identical first, and NFC
	// again afterwards because a case mapping may leave a sequence that composes.
	return norm.NFC.String(domain.FoldCase(norm.NFC.String(strings.TrimSpace(raw))))
}

// ParseEmail normalises raw (see NormalizeEmail) and checks that it is a single bare address
// of at most MaxEmailLength bytes, free of control and invisible characters.
func ParseEmail(raw string) (Email, error) {
	// Validity first: NFC would silently replace invalid bytes with U+FFFD.
	if !utf8.ValidString(raw) {
		return Email{}, domain.Invalid("email", "must be valid UTF-8")
	}
	s := NormalizeEmail(raw)
	switch {
	case s == "":
		return Email{}, domain.Invalid("email", "is required")
	case len(s) > MaxEmailLength:
		return Email{}, domain.Invalid("email", "must be at most 254 bytes of UTF-8 (an accented letter takes two or more)")
	case strings.IndexFunc(s, invisible) >= 0:
		// net/mail accepts any non-ASCII character in an address (RFC 6532), so it lets these
		// through: two addresses that look the same on screen would be two accounts.
		return Email{}, domain.Invalid("email", "must not contain spaces, control or invisible characters")
	}
	addr, err := mail.ParseAddress(s)
	// ParseAddress also accepts "Name <a@b>" and comments; only a bare address that
	// round-trips unchanged is an email here.
	if err != nil || addr.Address != s || addr.Name != "" {
		return Email{}, domain.Invalid("email", "must be a valid email address")
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return Email{}, domain.Invalid("email", "must be a valid email address")
	}
	return Email{value: s}, nil
}

// MaxLocalPartLength is the longest part before the "@" of a new address, in bytes of UTF-8
// (RFC 5321 4.5.3.1.1 counts octets; RFC 6531 keeps the limit for UTF-8 addresses). Mail
// servers may refuse longer ones, so an account could never receive its mail.
const MaxLocalPartLength = 64

// ParseNewEmail is ParseEmail with the limits that apply to an address given for a new
// account: its local part is at most MaxLocalPartLength bytes. Logging in uses ParseEmail,
// so that accounts created before the limit can still sign in.
func ParseNewEmail(raw string) (Email, error) {
	e, err := ParseEmail(raw)
	if err != nil {
		return e, err
	}
	if strings.LastIndexByte(e.value, '@') > MaxLocalPartLength {
		return Email{}, domain.Invalid("email", "must have at most 64 bytes of UTF-8 before the @")
	}
	return e, nil
}

// invisible reports whether r would not show as a character of its own: a control character
// (Cc), a format character (Cf: zero-width space, zero-width joiners, bidirectional marks,
// soft hyphen, byte order mark), any space or line separator (Z), a variation selector, or
// another default-ignorable code point (combining grapheme joiner, Hangul fillers).
func invisible(r rune) bool {
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Z, unicode.Variation_Selector,
		unicode.Other_Default_Ignorable_Code_Point)
}

// String returns the normalised address.
func (e Email) String() string { return e.value }

// IsZero reports whether e was never set.
func (e Email) IsZero() bool { return e.value == "" }
