package user_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/domain/identity"
)

func TestParseEmail(t *testing.T) {
	long := strings.Repeat("a", 245) + "@x.io" // 250 characters
	tooLong := strings.Repeat("a", 250) + "@x.io"
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"a@x.io", "a@x.io", true},
		{"  A@X.io \n", "a@x.io", true},
		{"First.Last+tag@Example.COM", "first.last+tag@example.com", true},
		{long, long, true},
		{tooLong, "", false},
		{"", "", false},
		{"   ", "", false},
		{"no-at-sign", "", false},
		{"a@", "", false},
		{"@x.io", "", false},
		{"Name <a@x.io>", "", false},
		{"a@x.io (comment)", "", false},
		{"a b@x.io", "", false},
		{"a@x.io,b@x.io", "", false},
		{"\xff@x.io", "", false},
		// One account per address however its characters are composed: NFC.
		{"caf\u00e9@x.io", "caf\u00e9@x.io", true},
		{"cafe\u0301@x.io", "caf\u00e9@x.io", true},
		{"CAFE\u0301@X.IO", "caf\u00e9@x.io", true},
		{"\u212a@x.io", "k@x.io", true}, // KELVIN SIGN is canonically K
		// Compared by case folding, not lower-casing: letters with two lower-case forms meet.
		{"ΟΔΥΣΣΕΥΣ@x.io", "οδυσσευσ@x.io", true},
		{"οδυσσευς@x.io", "οδυσσευσ@x.io", true}, // final sigma
		{"ſam@x.io", "sam@x.io", true},           // long s
		{"µ@x.io", "μ@x.io", true},               // micro sign
		// Control and invisible characters would make look-alike accounts.
		{"a\u200b@x.io", "", false},  // zero-width space
		{"a\u200d@x.io", "", false},  // zero-width joiner
		{"a\u2060@x.io", "", false},  // word joiner
		{"a\ufeff@x.io", "", false},  // byte order mark
		{"a\u00ad@x.io", "", false},  // soft hyphen
		{"a\u202e@x.io", "", false},  // right-to-left override
		{"a\u00a0b@x.io", "", false}, // no-break space
		{"a\u3164@x.io", "", false},  // Hangul filler
		{"a\ufe0f@x.io", "", false},  // variation selector
		{"a\x00@x.io", "", false},
		{"a\x7f@x.io", "", false},
		{"a\u0085@x.io", "", false}, // next line, a C1 control
		{"a\tb@x.io", "", false},
		// The limit is 254 bytes, not characters.
		{strings.Repeat("\u00e9", 124) + "@x.io", strings.Repeat("\u00e9", 124) + "@x.io", true},  // 253 bytes
		{strings.Repeat("\u00e9", 125) + "@x.io", "", false},                                      // 130 characters, 255 bytes
		{strings.Repeat("e\u0301", 124) + "@x.io", strings.Repeat("\u00e9", 124) + "@x.io", true}, // 377 bytes sent, 253 once composed
	}
	for _, c := range cases {
		got, err := user.ParseEmail(c.in)
		if c.ok != (err == nil) {
			t.Errorf("ParseEmail(%q) error = %v, want ok=%v", c.in, err, c.ok)
			continue
		}
		var ve *domain.ValidationError
		if !c.ok && (!errors.As(err, &ve) || ve.Fields[0].Field != "email") {
			t.Errorf("ParseEmail(%q) = %v, want a validation error on email", c.in, err)
		}
		if c.ok && got.String() != c.want {
			t.Errorf("ParseEmail(%q) = %q, want %q", c.in, got.String(), c.want)
		}
		if c.ok && user.NormalizeEmail(c.in) != got.String() {
			t.Errorf("NormalizeEmail(%q) = %q, want ParseEmail's %q", c.in, user.NormalizeEmail(c.in), got.String())
		}
	}
}

// TestParseNewEmailLimitsTheLocalPart: a new account's address has at most 64 bytes before its
// "@"; ParseEmail, which login uses, still takes longer ones.
func TestParseNewEmailLimitsTheLocalPart(t *testing.T) {
	cases := []struct {
		in string
		ok bool
	}{
		{strings.Repeat("a", 64) + "@x.io", true},
		{strings.Repeat("a", 65) + "@x.io", false},
		{strings.Repeat("\u00e9", 32) + "@x.io", true},   // 64 bytes
		{strings.Repeat("\u00e9", 32) + "a@x.io", false}, // 65 bytes, 33 characters
		{strings.Repeat("e\u0301", 32) + "@x.io", true},  // 96 bytes sent, 64 once composed
		{" " + strings.Repeat("A", 64) + "@X.io ", true}, // counted after trimming
		{"a@" + strings.Repeat("b", 200) + ".io", true},  // the domain is not the local part
		{strings.Repeat("a", 65), false},                 // not an address at all
	}
	for _, c := range cases {
		_, err := user.ParseNewEmail(c.in)
		if c.ok != (err == nil) {
			t.Errorf("ParseNewEmail(%q) error = %v, want ok=%v", c.in, err, c.ok)
			continue
		}
		var ve *domain.ValidationError
		if !c.ok && (!errors.As(err, &ve) || ve.Fields[0].Field != "email") {
			t.Errorf("ParseNewEmail(%q) = %v, want a validation error on email", c.in, err)
		}
	}
	long := strings.Repeat("a", 65) + "@x.io"
	if _, err := user.ParseEmail(long); err != nil {
		t.Errorf("ParseEmail(%q) = %v: existing accounts with long local parts must still parse", long, err)
	}
	_, err := user.ParseNewEmail(long)
	var ve *domain.ValidationError
	if !errors.As(err, &ve) || !strings.Contains(ve.Fields[0].Message, "64 bytes") {
		t.Errorf("ParseNewEmail(%q) = %v, want a message naming the 64-byte limit", long, err)
	}
	// The problem's detail puts the field before the message: it must read as a sentence
	// (it read "email the part before the @ must be ...").
	if want := "email must have at most 64 bytes of UTF-8 before the @."; err == nil || err.Error() != want {
		t.Errorf("ParseNewEmail(%q) = %v, want %q", long, err, want)
	}
}

// TestEmailLengthMessageSaysBytes keeps the message in step with what is counted.
func TestEmailLengthMessageSaysBytes(t *testing.T) {
	_, err := user.ParseEmail(strings.Repeat("\u00e9", 125) + "@x.io")
	var ve *domain.ValidationError
	if !errors.As(err, &ve) || !strings.Contains(ve.Fields[0].Message, "254 bytes") {
		t.Fatalf("err = %v, want a message that counts bytes", err)
	}
}

func TestValidatePassword(t *testing.T) {
	cases := []struct {
		name string
		in   string
		ok   bool
	}{
		{"seven", "1234567", false},
		{"eight", "12345678", true},
		{"eight multibyte chars", "ééééééééé"[:16], true},
		{"sixty-four", strings.Repeat("p", 64), true},
		{"1024 bytes", strings.Repeat("p", 1024), true},
		{"1025 bytes", strings.Repeat("p", 1025), false},
		{"invalid utf8", "abcdefgh\xff", false},
	}
	for _, c := range cases {
		if err := user.ValidatePassword(c.in); c.ok != (err == nil) {
			t.Errorf("%s: ValidatePassword error = %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

func TestParseNameAndRole(t *testing.T) {
	if n, err := user.ParseName("  Ada  "); err != nil || n != "Ada" {
		t.Fatalf("ParseName trims: %q, %v", n, err)
	}
	if _, err := user.ParseName(strings.Repeat("é", 100)); err != nil {
		t.Fatalf("100 characters must be accepted: %v", err)
	}
	if _, err := user.ParseName(strings.Repeat("é", 101)); err == nil {
		t.Fatal("101 characters must be refused")
	}
	if _, err := user.ParseName("a\x00b"); err == nil {
		t.Fatal("control characters must be refused")
	}
	for _, r := range []string{"user", "admin"} {
		if _, err := identity.ParseRole(r); err != nil {
			t.Errorf("identity.ParseRole(%q): %v", r, err)
		}
	}
	for _, r := range []string{"", "Admin", "root"} {
		if _, err := identity.ParseRole(r); err == nil {
			t.Errorf("identity.ParseRole(%q) must fail", r)
		}
	}
}

// TestNamesRefuseInvisibleCharacters: a display name may not hold a character that does not
// show as itself (domain.InvisibleInName), so two accounts cannot look alike on screen and a
// name cannot reorder the text shown after it; the refusal names the character by its code
// point. The joiners that Persian, Indic and emoji spelling need stay allowed.
func TestNamesRefuseInvisibleCharacters(t *testing.T) {
	for raw, cp := range map[string]string{
		"Ada\u200b":         "U+200B",
		"\ufeffAda":         "U+FEFF",
		"Ada\u202eecalevol": "U+202E",
		"A\u2066da\u2069":   "U+2066",
		"Ada\u200f":         "U+200F",
		"A\u00adda":         "U+00AD",
		"A\u2060da":         "U+2060",
		"\u3164":            "U+3164",
		"Ada\u0007":         "U+0007",
		"Ada\u0085x":        "U+0085",
		"Ada\ufdd0":         "U+FDD0",
	} {
		_, err := user.ParseName(raw)
		var v *domain.ValidationError
		want := "must not contain invisible or control characters (" + cp + ")"
		if !errors.As(err, &v) || len(v.Fields) != 1 || v.Fields[0].Field != "name" || v.Fields[0].Message != want {
			t.Errorf("ParseName(%+q) = %v; want name %s", raw, err, want)
		}
	}
	for _, raw := range []string{"\u0645\u06cc\u200c\u062e\u0648", "👩\u200d💻", "山田\u3000太郎", "Zoë ❤\ufe0f"} {
		if n, err := user.ParseName(raw); err != nil || n != raw {
			t.Errorf("ParseName(%+q) = %+q, %v; want it accepted as it is", raw, n, err)
		}
	}
}

// TestNamesAreOneUnicodeForm: a display name is kept in NFC, so "é" typed precomposed
// (U+00E9) and as "e" with a combining accent (U+0301) is one name, counted in the characters
// people see, and its search form is the query's whichever way either was typed. Before, the
// name was kept as typed: the admin directory did not find "e\u0301tienne" by "étienne" (nor
// the other way round), and 60 decomposed "é" were refused as over 100 characters.
func TestNamesAreOneUnicodeForm(t *testing.T) {
	if n, err := user.ParseName(" e\u0301tienne "); err != nil || n != "\u00e9tienne" {
		t.Fatalf("ParseName(e + U+0301 tienne) = %q, %v; want the NFC form \u00e9tienne", n, err)
	}
	if n, err := user.ParseName(strings.Repeat("e\u0301", 100)); err != nil || n != strings.Repeat("\u00e9", 100) {
		t.Fatalf("100 decomposed é are 100 characters: %q, %v", n, err)
	}
	if _, err := user.ParseName(strings.Repeat("e\u0301", 101)); err == nil {
		t.Fatal("101 decomposed é must be refused")
	}
	for _, q := range []string{"\u00e9tienne", "e\u0301tienne", "\u00c9TIENNE", "E\u0301TIENNE"} {
		if got := user.SearchForm(q); got != "\u00e9tienne" {
			t.Errorf("SearchForm(%q) = %q, want \u00e9tienne", q, got)
		}
	}
}

func TestNewRefusesInvalidState(t *testing.T) {
	email, _ := user.ParseEmail("a@x.io")
	now := time.Now()
	if _, err := user.New("", email, "h", "", identity.RoleUser, now); err == nil {
		t.Error("empty id accepted")
	}
	if _, err := user.New("1", user.Email{}, "h", "", identity.RoleUser, now); err == nil {
		t.Error("zero email accepted")
	}
	if _, err := user.New("1", email, "", "", identity.RoleUser, now); err == nil {
		t.Error("empty hash accepted")
	}
	if _, err := user.New("1", email, "h", "", "root", now); err == nil {
		t.Error("unknown role accepted")
	}
	u, err := user.New("1", email, "h", "Ada", identity.RoleUser, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Rename(strings.Repeat("x", 101), now); err == nil || u.Name() != "Ada" {
		t.Errorf("invalid rename must fail and keep the name, got %v, %q", err, u.Name())
	}
	if err := u.ChangeRole("root", now); err == nil || u.Role() != identity.RoleUser {
		t.Errorf("invalid role change must fail and keep the role, got %v, %q", err, u.Role())
	}
}
