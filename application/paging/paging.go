// Package paging holds the cursor and limit rules shared by every list use case, so each list
// endpoint answers bad input the same way.
package paging

import (
	"encoding/base64"
	"strings"

	"github.com/acme/postsvc/domain"
)

// Limits of a page.
const (
	DefaultLimit = 20
	MaxLimit     = 100
	// maxIDLength bounds what a cursor may carry; ids are far shorter.
	maxIDLength = 64
)

// Limit applies the default to 0 and checks the range.
func Limit(requested int) (int, error) {
	switch {
	case requested == 0:
		return DefaultLimit, nil
	case requested < 1 || requested > MaxLimit:
		return 0, domain.Invalid("limit", "must be between 1 and 100")
	}
	return requested, nil
}

// Encode turns the id of the last item of a page into an opaque cursor.
func Encode(lastID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(lastID))
}

// Decode returns the id a cursor carries; "" decodes to "" (the first page). Anything that
// this package did not make is a validation error naming the cursor.
func Decode(cursor string) (string, error) {
	if cursor == "" {
		return "", nil
	}
	if len(cursor) > base64.RawURLEncoding.EncodedLen(maxIDLength) {
		return "", invalidCursor()
	}
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(raw) == 0 {
		return "", invalidCursor()
	}
	id := string(raw)
	if !ValidID(id) {
		return "", invalidCursor()
	}
	return id, nil
}

// ValidID reports whether id could be an identifier this service made: 1 to 64 characters of
// letters, digits, '-' and '_'. Anything else cannot name a stored item.
func ValidID(id string) bool {
	return id != "" && len(id) <= maxIDLength && strings.IndexFunc(id, func(r rune) bool {
		return (r < '0' || r > '9') && (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && r != '-' && r != '_'
	}) < 0
}

func invalidCursor() error {
	return domain.Invalid("cursor", "is not a cursor returned by this endpoint")
}
