package user_test

import (
	"testing"
	"unicode/utf8"

	"github.com/acme/postsvc/domain/accounts/user"
)

// FuzzEmail: normalising is idempotent, and an address ParseEmail accepts is valid UTF-8 of at
// most 254 bytes, already normal, and parses again to itself, so one account has one spelling.
func FuzzEmail(f *testing.F) {
	for _, seed := range []string{
		"a@x.io", " A@X.IO ", "Ångström@x.io", "A\u030angstr\u00f6m@x.io", "a@x", "@x.io", "a@",
		"a\u200b@x.io", "\xff@x.io", "ǅ@x.io", "ß@x.io", "İ@x.io", "a@x.io\n", "ΟΔΥΣΣΕΥΣ@x.io", "ſ\u0307@x.io", "µ@x.io",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		once := user.NormalizeEmail(raw)
		if twice := user.NormalizeEmail(once); twice != once {
			t.Fatalf("NormalizeEmail is not idempotent on %q: %q then %q", raw, once, twice)
		}
		e, err := user.ParseEmail(raw)
		if err != nil {
			return
		}
		v := e.String()
		if !utf8.ValidString(v) || len(v) > 254 || user.NormalizeEmail(v) != v {
			t.Fatalf("ParseEmail(%q) = %q, which is not a normal address", raw, v)
		}
		again, err := user.ParseEmail(v)
		if err != nil || again.String() != v {
			t.Fatalf("ParseEmail(%q) = %q, which parses again to %q, %v", raw, v, again.String(), err)
		}
	})
}
