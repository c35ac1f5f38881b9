// Package storage holds what the object store adapters (storage/fsstore, storage/s3store)
// share: the rules for object keys and list prefixes of ports.ObjectStore.
//
// Keys are made by the service, never by clients, but the adapters check them anyway, so a
// bug or a forged key can never reach a file outside the store's folder or an unintended S3
// key: letters, digits, '-', '_', '.' and '/' as a separator, at most
// ports.MaxObjectKeyBytes, and no empty, "." or ".." segment (so no leading or trailing '/',
// no "//" and no traversal).
package storage

import (
	"errors"
	"fmt"
	"strings"

	"github.com/acme/postsvc/ports"
)

// ErrInvalidKey is returned (wrapped) for a key or prefix that breaks the rules above.
var ErrInvalidKey = errors.New("invalid object key")

// ValidateKey reports whether key is a well-formed object key.
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if len(key) > ports.MaxObjectKeyBytes {
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidKey, ports.MaxObjectKeyBytes)
	}
	for seg := range strings.SplitSeq(key, "/") {
		if err := validSegment(seg); err != nil {
			return fmt.Errorf("%w: %q: %w", ErrInvalidKey, key, err)
		}
	}
	return nil
}

// ValidatePrefix reports whether prefix may start keys: "" (every key), or a key's beginning.
// Every complete segment (before the last '/') follows the key rules; the last, partial one
// may be empty (a prefix ending in '/') or any run of allowed characters.
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if len(prefix) > ports.MaxObjectKeyBytes {
		return fmt.Errorf("%w: prefix longer than %d bytes", ErrInvalidKey, ports.MaxObjectKeyBytes)
	}
	segs := strings.Split(prefix, "/")
	for i, seg := range segs {
		if i == len(segs)-1 {
			if !allowedChars(seg) {
				return fmt.Errorf("%w: prefix %q: only letters, digits, '-', '_', '.' and '/' are allowed", ErrInvalidKey, prefix)
			}
			break
		}
		if err := validSegment(seg); err != nil {
			return fmt.Errorf("%w: prefix %q: %w", ErrInvalidKey, prefix, err)
		}
	}
	return nil
}

func validSegment(seg string) error {
	switch seg {
	case "":
		return errors.New("empty segment (leading, trailing or double '/')")
	case ".", "..":
		return fmt.Errorf("%q segment", seg)
	}
	if !allowedChars(seg) {
		return errors.New("only letters, digits, '-', '_', '.' and '/' are allowed")
	}
	return nil
}

func allowedChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}
