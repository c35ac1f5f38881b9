// Package paging holds the cursor and limit rules shared by every list use case, so each list
// endpoint answers bad input the same way.
package paging

import (
	"encoding/base64"
	"strconv"

	"github.com/acme/postsvc/domain"
)

// Limits of a page.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// idLength is the length of an identifier in its canonical text form:
// "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".
const idLength = 36

// Limit applies the default to 0 and checks the range.
func Limit(requested int) (int, error) {
	switch {
	case requested == 0:
		return DefaultLimit, nil
	case requested < 1 || requested > MaxLimit:
		return 0, InvalidLimit()
	}
	return requested, nil
}

// InvalidLimit is the refusal of a limit that is not 1 to MaxLimit: one message whichever way
// it is wrong (0, -1, 101, +5, 1e2, " 5", an Arabic-Indic digit), so a client reads the rule
// once instead of a different message per mistake. Transports that read the limit from text
// refuse with it too (httpapi.PageQuery).
func InvalidLimit() error {
	return domain.Invalid("limit", "must be an integer from 1 to "+strconv.Itoa(MaxLimit)+", written in the digits 0-9")
}

// Encode turns the id of the last item of a page into an opaque cursor.
func Encode(lastID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(lastID))
}

// Decode returns the id a cursor carries; "" decodes to "" (the first page). Anything that
// this package did not make is a validation error naming the cursor: a cursor is only
// accepted when it carries an id this service could have issued (see ValidID), so a forged
// one such as the encoding of "zzzz" is refused instead of being read as a position.
func Decode(cursor string) (string, error) {
	if cursor == "" {
		return "", nil
	}
	if len(cursor) != base64.RawURLEncoding.EncodedLen(idLength) {
		return "", invalidCursor()
	}
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return "", invalidCursor()
	}
	id := string(raw)
	if !ValidID(id) {
		return "", invalidCursor()
	}
	return id, nil
}

// ValidID reports whether id could be an identifier this service made. Every id comes from
// ports.IDGenerator, whose implementation (adapters/system) issues UUIDv7 in the canonical
// lower-case text form, so anything else (another UUID version or variant, upper case,
// braces, no hyphens, "zzzz") cannot name a stored item and is refused before it reaches
// the database.
func ValidID(id string) bool {
	if len(id) != idLength {
		return false
	}
	for i := range len(id) {
		b := id[i]
		switch i {
		case 8, 13, 18, 23:
			if b != '-' {
				return false
			}
		case 14:
			// The version nibble: 7, time-ordered.
			if b != '7' {
				return false
			}
		case 19:
			// The variant of RFC 9562: the two top bits are 10.
			if b != '8' && b != '9' && b != 'a' && b != 'b' {
				return false
			}
		default:
			if (b < '0' || b > '9') && (b < 'a' || b > 'f') {
				return false
			}
		}
	}
	return true
}

func invalidCursor() error {
	return domain.Invalid("cursor", "is not a cursor returned by this endpoint")
}
