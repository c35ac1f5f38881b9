package storage_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/acme/postsvc/adapters/storage"
	"github.com/acme/postsvc/ports"
)

func TestValidateKey(t *testing.T) {
	for _, key := range []string{
		"a", "images/0190f0c4-7a1b-7c3e-9d2f-1234567890ab/original", "x.y_z-1/T.png", "...", "a/.hidden",
		strings.Repeat("k", ports.MaxObjectKeyBytes),
	} {
		if err := storage.ValidateKey(key); err != nil {
			t.Errorf("%q: %v", key, err)
		}
	}
	for _, key := range []string{
		"", "/abs", "a/", "a//b", ".", "..", "../x", "a/../b", "a/./b", "a/..", `a\b`, "a b", "a\x00b", "é",
		"a?b", "a%2f", "~", strings.Repeat("k", ports.MaxObjectKeyBytes+1),
	} {
		if err := storage.ValidateKey(key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("%q: got %v, want ErrInvalidKey", key, err)
		}
	}
}

func TestValidatePrefix(t *testing.T) {
	for _, p := range []string{"", "a", "a/", "images/01", "a/b/", "a/.", "a/.."} {
		if err := storage.ValidatePrefix(p); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
	for _, p := range []string{"/", "/a", "../", "a/../", "a//", "./a", "a b", `a\`, strings.Repeat("p", ports.MaxObjectKeyBytes+1)} {
		if err := storage.ValidatePrefix(p); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("%q: got %v, want ErrInvalidKey", p, err)
		}
	}
}
