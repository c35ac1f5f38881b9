package user

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/acme/postsvc/domain"
)

// MaxNameChars is the longest display name, counted in characters (runes).
const MaxNameChars = 100

// ParseName trims a display name and checks it. The empty name is allowed: names are optional.
func ParseName(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	switch {
	case !utf8.ValidString(s):
		return "", domain.Invalid("name", "must be valid UTF-8")
	case utf8.RuneCountInString(s) > MaxNameChars:
		return "", domain.Invalid("name", "must be at most 100 characters")
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return "", domain.Invalid("name", "must not contain control characters")
	}
	return s, nil
}
