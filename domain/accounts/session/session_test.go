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
	secret := strings.Repeat("a", 43)
	for _, tok := range []string{"", "nodot", ".secret", "s1.short", strings.Repeat("x", 65) + "." + secret,
		// MySQL compares ignoring trailing spaces: "s1 " would find the session s1.
		"s1 ." + secret, "s1\t." + secret, " s1." + secret, "s\u00e91." + secret,
		"s1.short." + secret, "s1." + strings.Repeat("f", 22) + ".short"} {
		if _, err := session.SessionIDFromRefreshToken(tok); !errors.Is(err, session.ErrInvalidRefreshToken) {
			t.Errorf("%q: got %v", tok, err)
		}
	}
}

// TestForgedTokenNamingTheSessionDoesNotRevokeIt: the session id is no secret (every access
// token shows it), so a token made of it and anything else must be refused without revoking
// the session; only a retired token of the session's family is a replay.
func TestForgedTokenNamingTheSessionDoesNotRevokeIt(t *testing.T) {
	now := time.Now()
	s, first, err := session.New("s1", "u1", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(first, ".")
	if len(parts) != 3 || parts[0] != "s1" {
		t.Fatalf("token %q: want <session id>.<family>.<secret>", first)
	}
	forged := []string{
		"s1." + strings.Repeat("A", 22) + "." + strings.Repeat("B", 43), // a made-up family
		"s1." + strings.Repeat("B", 43),                                 // the older, family-less form
		"s1." + parts[1] + "x." + parts[2],                              // not a family at all
	}
	for _, tok := range forged {
		if _, err := s.Rotate(tok, now.Add(time.Minute)); !errors.Is(err, session.ErrInvalidRefreshToken) || errors.Is(err, session.ErrReuse) {
			t.Fatalf("forged %q: %v, want invalid_refresh_token and no reuse", tok, err)
		}
		if !s.Active(now.Add(time.Minute)) {
			t.Fatalf("forged %q revoked the session", tok)
		}
	}
	second, err := s.Rotate(first, now.Add(2*time.Minute))
	if err != nil {
		t.Fatalf("the real token after the forgeries: %v", err)
	}
	if !strings.HasPrefix(second, "s1."+parts[1]+".") {
		t.Fatalf("the successor %q does not carry the family %q", second, parts[1])
	}
	// A retired token of the family is a replay, as before.
	if _, err := s.Rotate(first, now.Add(3*time.Minute)); !errors.Is(err, session.ErrReuse) {
		t.Fatalf("replaying the retired token: %v, want reuse", err)
	}
	if s.Active(now.Add(3 * time.Minute)) {
		t.Fatal("a replay left the session active")
	}
}

// TestSessionWithoutFamilyKeepsTheOlderRule: a session opened before families (none stored)
// revokes on any mismatch, and gets a family at its next rotation.
func TestSessionWithoutFamilyKeepsTheOlderRule(t *testing.T) {
	now := time.Now()
	current := "s1." + strings.Repeat("c", 43)
	old := session.Rehydrate("s1", "u1", session.HashRefreshToken(current), "", now, now.Add(time.Hour), now, nil)
	next, err := old.Rotate(current, now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if old.FamilyHash() == "" || strings.Count(next, ".") != 2 {
		t.Fatalf("after rotating, family hash %q and token %q: want a family", old.FamilyHash(), next)
	}

	legacy := session.Rehydrate("s2", "u1", session.HashRefreshToken("s2."+strings.Repeat("c", 43)), "", now, now.Add(time.Hour), now, nil)
	if _, err := legacy.Rotate("s2."+strings.Repeat("d", 43), now.Add(time.Minute)); !errors.Is(err, session.ErrReuse) {
		t.Fatalf("a mismatch on a family-less session: %v, want reuse as before", err)
	}
}
