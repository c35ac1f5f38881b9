package domain_test

import (
	"errors"
	"testing"
	"unicode"

	"github.com/acme/postsvc/domain"
)

func TestInvisibleInName(t *testing.T) {
	const ok = -1
	const scotland = "🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F"
	for _, tc := range []struct {
		s    string
		want rune // ok: accepted
	}{
		// Names as people write them.
		{"Ada Lovelace", ok},
		{"Zoë", ok},
		{"山田\u3000太郎", ok},                     // ideographic space between family and given name
		{"Jean\u00a0Dupont", ok},               // no-break space
		{"\u0645\u06cc\u200c\u062e\u0648", ok}, // Persian with a zero width non-joiner
		{"\u0915\u094d\u200d\u0937", ok},       // Devanagari with a zero width joiner
		{"👩\u200d💻", ok},                       // an emoji ZWJ sequence
		{"❤\ufe0f", ok},                        // an emoji presentation selector
		{"葛\U000E0100城", ok},                   // an ideographic variation selector
		{"\ue000", ok},                         // private use: shown, as a vendor glyph or a box
		{"\U0001FAE9", ok},                     // unassigned in Unicode 15.0, an emoji of 16.0
		{"Ross " + scotland, ok},               // a subdivision flag
		// Invisible, control and formatting characters.
		{"Ada\u200b", 0x200b},
		{"\ufeffAda", 0xfeff},
		{"a\u202eb", 0x202e},
		{"a\u202ab", 0x202a},
		{"a\u2066b\u2069", 0x2066},
		{"a\u200eb", 0x200e},
		{"a\u200fb", 0x200f},
		{"a\u061cb", 0x061c},
		{"a\u2060b", 0x2060},
		{"a\u2064b", 0x2064},
		{"Lovel\u00adace", 0x00ad},
		{"a\x00b", 0x00},
		{"a\tb", '\t'},
		{"a\nb", '\n'},
		{"a\x7fb", 0x7f},
		{"a\u0085b", 0x85},
		{"a\u009fb", 0x9f},
		{"a\u2028b", 0x2028},
		{"a\u2029b", 0x2029},
		{"\u3164", 0x3164}, // Hangul filler: a letter drawn as nothing
		{"a\u115fb", 0x115f},
		{"a\uffa0b", 0xffa0},
		{"a\u034fb", 0x034f},
		{"a\ufdd0b", 0xfdd0},
		{"a\ufffeb", 0xfffe},
		{"a\U0010FFFFb", 0x10ffff},
		{"a\U000E0041b", 0xe0041},          // a tag character outside a flag
		{"🏴\U000E0067\U000E0062", 0xe0067}, // a flag without its cancel tag
		{"🏴\U000E007F", 0xe007f},           // a cancel tag without tags
		{"a\U000E007F", 0xe007f},
		{"x\xffy", unicode.ReplacementChar}, // not UTF-8 (callers refuse it first)
	} {
		r, bad := domain.InvisibleInName(tc.s)
		wantBad := tc.want != ok
		if bad != wantBad || bad && r != tc.want {
			t.Errorf("InvisibleInName(%+q) = %U, %v; want %U, %v", tc.s, r, bad, tc.want, wantBad)
		}
	}
}

// TestForbiddenInNameCoversFormatCharacters: every format character but the two joiners is
// refused, and nothing a script spells words with (letters, marks, digits) is, apart from the
// default-ignorable letters.
func TestForbiddenInNameCoversFormatCharacters(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if r >= 0xd800 && r <= 0xdfff {
			continue
		}
		forbidden := domain.ForbiddenInName(r)
		switch {
		case r == 0x200c || r == 0x200d:
			if forbidden {
				t.Errorf("%U (a joiner) is refused", r)
			}
		case unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Noncharacter_Code_Point):
			if !forbidden {
				t.Errorf("%U is accepted", r)
			}
		case unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Zs):
			if forbidden != unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) {
				t.Errorf("%U: refused %v", r, forbidden)
			}
		}
	}
}

func TestCheckNameChars(t *testing.T) {
	if err := domain.CheckNameChars("name", "Ada"); err != nil {
		t.Fatalf("Ada: %v", err)
	}
	err := domain.CheckNameChars("name", "Ada\u200b")
	var v *domain.ValidationError
	if !errors.As(err, &v) || len(v.Fields) != 1 || v.Fields[0].Field != "name" ||
		v.Fields[0].Message != "must not contain invisible or control characters (U+200B)" {
		t.Fatalf("err = %#v", err)
	}
}

func TestCheckNameCharsWantsAVisibleCharacter(t *testing.T) {
	for _, ok := range []string{"", "a\u200d", "\u0915\u094d\u200d\u0937", "\U0001F469\u200d\U0001F4BB", "\u2764\ufe0f", "e\u0301", " x "} {
		if err := domain.CheckNameChars("name", ok); err != nil {
			t.Errorf("%+q: %v", ok, err)
		}
	}
	for _, bad := range []string{"\u200d", "\u200c\u200d", "\u0301", "\u0301\u0302", "\ufe0f", "\u20dd", " ", "\u3000\u200d"} {
		err := domain.CheckNameChars("name", bad)
		var v *domain.ValidationError
		if !errors.As(err, &v) || len(v.Fields) != 1 || v.Fields[0].Field != "name" ||
			v.Fields[0].Message != "must contain a visible character, not only joiners, combining marks or spaces" {
			t.Errorf("%+q: %#v, want it refused as invisible", bad, err)
		}
	}
}
