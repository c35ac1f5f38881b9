package user

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/acme/postsvc/domain"
)

// MaxNameChars is the longest display name, counted in characters (runes) of its NFC form.
const MaxNameChars = 100

// ParseName trims a display name, normalises it to Unicode NFC and checks it. The empty name
// is allowed: names are optional. NFC makes a name typed with a precomposed "é" (U+00E9) and
// one typed as "e" and a combining accent (U+0301), as some keyboards and systems send it, one
// name, as emails are: the same characters, found by the same search. A name may not contain
// invisible or control characters (domain.InvisibleInName: U+200B, U+FEFF, bidirectional
// controls, ...); the zero width joiner and non-joiner are allowed. Names stored before that
// rule are not checked again: they stay readable as stored.
func ParseName(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	// Validity first: NFC would silently replace invalid bytes with U+FFFD.
	if !utf8.ValidString(s) {
		return "", domain.Invalid("name", "must be valid UTF-8")
	}
	s = norm.NFC.String(s)
	if utf8.RuneCountInString(s) > MaxNameChars {
		return "", domain.Invalid("name", "must be at most 100 characters")
	}
	// Invisible characters would make names that look like another ("Ada" and "Ada" with a
	// zero width space) or reorder what is shown after them (a right-to-left override).
	if err := domain.CheckNameChars("name", s); err != nil {
		return "", err
	}
	return s, nil
}

// SearchForm is the form in which the admin directory compares names, emails and queries:
// Unicode NFC, case folded (domain.FoldCase), and NFC again because a case mapping may leave
// a sequence that composes. It is the normalisation of emails (NormalizeEmail) without the
// trimming, so a query finds a name or an address whichever way its accents were typed.
func SearchForm(s string) string {
	return norm.NFC.String(domain.FoldCase(norm.NFC.String(s)))
}
