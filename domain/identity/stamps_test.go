package identity_test

import (
	"strings"
	"testing"

	"github.com/acme/postsvc/domain/identity"
)

func TestStampsCountEachScope(t *testing.T) {
	var s identity.Stamps
	if s.Get("posts") != 0 {
		t.Fatal("an empty stamps has a counter")
	}
	var err error
	for range 3 {
		if s, err = s.Bumped("posts"); err != nil {
			t.Fatal(err)
		}
	}
	if s, err = s.Bumped("images"); err != nil {
		t.Fatal(err)
	}
	if s.Get("posts") != 3 || s.Get("images") != 1 || s.Get("ecgs") != 0 || s.Get("post") != 0 {
		t.Fatalf("stamps %q read back wrong", s)
	}
	for _, bad := range []string{"", "Posts", "a=b", "a;b", strings.Repeat("x", 33)} {
		if _, err := s.Bumped(bad); err == nil {
			t.Errorf("scope %q accepted", bad)
		}
	}
	// Corrupt input reads as 0 and is repaired by the next bump, never fatal.
	if got, err := identity.Stamps("posts=x;junk;images=2").Bumped("posts"); err != nil || got.Get("posts") != 1 || got.Get("images") != 2 {
		t.Fatalf("bump over corrupt stamps = %q, %v", got, err)
	}
	var many identity.Stamps
	for i := 0; ; i++ {
		next, err := many.Bumped("scope_" + strings.Repeat("x", 20) + string(rune('a'+i%26)) + string(rune('a'+i/26)))
		if err != nil {
			break
		}
		many = next
		if i > 100 {
			t.Fatal("stamps grow without bound")
		}
	}
	if len(many) > identity.MaxStampsBytes {
		t.Fatalf("stamps of %d bytes", len(many))
	}
}

func TestPrincipalStamp(t *testing.T) {
	p := identity.Principal{Stamps: "posts=7"}
	if p.Stamp("posts") != 7 || p.Stamp("images") != 0 {
		t.Fatal("Principal.Stamp misreads its stamps")
	}
}
