package user_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/accounts/apikey"
	"github.com/acme/postsvc/domain/accounts/user"
)

// FuzzName: display-name normalisation (user.ParseName, which API key names share).
// Properties:
//
//   - it never panics; a refusal is a validation error of the field name, with no name;
//   - it is idempotent: an accepted name parses again to itself (normalising twice equals
//     normalising once);
//   - an accepted name is the input without surrounding white space, in Unicode NFC, valid
//     UTF-8, at most 100 characters (and so 400 bytes, the users.name and api_keys.name
//     columns' width, as is its search form users.name_lower), with no invisible or control
//     character and no white space at either end;
//   - it is refused exactly when the trimmed input is not UTF-8, or its NFC form is over 100
//     characters or holds a character that domain.ForbiddenInName reports, outside a
//     subdivision flag (counted here rune by rune), or is not empty and holds no character
//     drawn by itself (only joiners, combining marks or spaces);
//   - apikey.ParseName accepts the same names, except the empty one.
func FuzzName(f *testing.F) {
	for _, seed := range []string{
		"Ada", "  Ada  ", "", " ", "\t\n\v\f\r \u0085\u00a0\u2028\u3000", "Ada\x00", "a\u200bb", "\ufeffAda",
		"Ada\xff", "\xff", "\xed\xa0\x80", "Zoë", "Zoe\u0308", "İstanbul", "ǅ", "Ⱥ", strings.Repeat("é", 100),
		strings.Repeat("é", 101), strings.Repeat("😀", 100), " " + strings.Repeat("a", 100) + " ", "a\u0085b",
		"a\u2028b", "a\u202eb", "\u0000", "a\x7fb", "a\u009fb", strings.Repeat(" ", 300) + "x",
		strings.Repeat("e\u0301", 100), strings.Repeat("e\u0301", 101), strings.Repeat("\u0958", 51),
		"a\u200cb", "👩\u200d💻", "\u3164", "a\ufdd0", "🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F",
		"🏴\U000E0067\U000E007F\U000E007F", "a\U000E0067\U000E007F", "\u00ad", "\u0308", "\u200d\u200c", "a\u0308",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		name, err := user.ParseName(raw)
		trimmed := strings.TrimSpace(raw)
		wantRefusal := ""
		switch {
		case !utf8.ValidString(trimmed):
			wantRefusal = "not UTF-8"
		case utf8.RuneCountInString(norm.NFC.String(trimmed)) > 100:
			wantRefusal = "over 100 characters"
		default:
			for _, r := range stripFlags(norm.NFC.String(trimmed)) {
				if unicode.IsControl(r) || domain.ForbiddenInName(r) {
					wantRefusal = "an invisible or control character"
				}
			}
			visible := false // a flag's black flag is drawn
			for _, r := range norm.NFC.String(trimmed) {
				if r != '\u200c' && r != '\u200d' && !unicode.In(r, unicode.Z, unicode.Mn, unicode.Me) {
					visible = true
				}
			}
			if wantRefusal == "" && trimmed != "" && !visible {
				wantRefusal = "nothing visible (only joiners, combining marks or spaces)"
			}
		}
		if err != nil {
			var v *domain.ValidationError
			if name != "" || !errors.As(err, &v) || len(v.Fields) != 1 || v.Fields[0].Field != "name" {
				t.Fatalf("%q: refused with %q, %v", raw, name, err)
			}
			if wantRefusal == "" {
				t.Fatalf("%q: refused (%v), yet it breaks no rule", raw, err)
			}
			if _, kerr := apikey.ParseName(raw); kerr == nil {
				t.Fatalf("%q: a key may have a name an account may not", raw)
			}
			return
		}
		if wantRefusal != "" {
			t.Fatalf("%q: accepted as %q, yet it is %s", raw, name, wantRefusal)
		}
		if name != norm.NFC.String(trimmed) || strings.TrimSpace(name) != name {
			t.Fatalf("%q: accepted as %q, not the input trimmed in NFC", raw, name)
		}
		if n := utf8.RuneCountInString(name); n > user.MaxNameChars || len(name) > 4*user.MaxNameChars ||
			utf8.RuneCountInString(user.SearchForm(name)) > user.MaxNameChars {
			t.Fatalf("%q: accepted as %q, %d characters, %d bytes", raw, name, n, len(name))
		}
		if again, err := user.ParseName(name); err != nil || again != name {
			t.Fatalf("%q: accepted as %q, which parses to %q, %v", raw, name, again, err)
		}
		key, kerr := apikey.ParseName(raw)
		switch {
		case name == "" && kerr == nil:
			t.Fatalf("%q: a key with no name", raw)
		case name != "" && (kerr != nil || key != name):
			t.Fatalf("%q: account name %q, key name %q, %v", raw, name, key, kerr)
		}
	})
}

// stripFlags removes the well-formed subdivision flags (the black flag, 1 to 32 tag
// characters and the cancel tag), whose tag characters a name may hold.
func stripFlags(s string) string {
	return flagSequence.ReplaceAllString(s, "")
}

var flagSequence = regexp.MustCompile("\U0001F3F4[\U000E0020-\U000E007E]{1,32}\U000E007F")
