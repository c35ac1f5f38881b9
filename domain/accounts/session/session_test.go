package session_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/acme/postsvc/domain/accounts/session"
)

func TestRotateRetiresOldTokenAndDetectsReuse(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, first, err := session.New("s1", "u1", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s.RefreshHash(), first) || s.RefreshHash() == first {
		t.Fatal("the plain token must not be stored")
	}
	if sid, err := session.SessionIDFromRefreshToken(first); err != nil || sid != "s1" {
		t.Fatalf("token must name its session: %q, %v", sid, err)
	}
	second, err := s.Rotate(first, now.Add(time.Minute))
	if err != nil || second == first {
		t.Fatalf("rotate: %q, %v", second, err)
	}
	if _, err := s.Rotate(first, now.Add(2*time.Minute)); !errors.Is(err, session.ErrReuse) {
		t.Fatalf("reusing a retired token: got %v, want ErrReuse", err)
	}
	if s.Active(now.Add(2 * time.Minute)) {
		t.Fatal("reuse must revoke the session")
	}
	if _, err := s.Rotate(second, now.Add(3*time.Minute)); !errors.Is(err, session.ErrInvalidRefreshToken) {
		t.Fatalf("after revocation even the current token fails: got %v", err)
	}
}

func TestExpiry(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, tok, _ := session.New("s1", "u1", now, time.Hour)
	if _, err := s.Rotate(tok, now.Add(time.Hour)); !errors.Is(err, session.ErrInvalidRefreshToken) {
		t.Fatalf("expired session: got %v", err)
	}
}

func TestSessionIDFromRefreshTokenRejectsGarbage(t *testing.T) {
	for _, tok := range []string{"", "nodot", ".secret", "s1.short", strings.Repeat("x", 65) + "." + strings.Repeat("a", 43)} {
		if _, err := session.SessionIDFromRefreshToken(tok); !errors.Is(err, session.ErrInvalidRefreshToken) {
			t.Errorf("%q: got %v", tok, err)
		}
	}
}
