package domain_test

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/acme/postsvc/domain"
)

// Every pair of characters that strings.EqualFold calls equal folds to one character, and a
// character folds to one EqualFold calls equal to it, or to its lower case (İ to i).
func TestFoldCaseMakesEqualFoldIdentical(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if r >= 0xD800 && r <= 0xDFFF {
			continue
		}
		f := domain.FoldRune(r)
		if !strings.EqualFold(string(r), string(f)) && f != unicode.ToLower(r) {
			t.Fatalf("FoldRune(%U) = %U, which EqualFold tells apart from it", r, f)
		}
		for g := unicode.SimpleFold(r); g != r; g = unicode.SimpleFold(g) {
			if domain.FoldRune(g) != f {
				t.Fatalf("%U and %U fold together, but FoldRune gives %U and %U", r, g, f, domain.FoldRune(g))
			}
		}
		if domain.FoldRune(f) != f {
			t.Fatalf("FoldRune(%U) = %U, which folds on to %U", r, f, domain.FoldRune(f))
		}
	}
}

func TestFoldCase(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"already folded 123", "already folded 123"},
		{"MiXeD@Example.IO", "mixed@example.io"},
		{"ΟΔΥΣΣΕΥΣ", "οδυσσευσ"},
		{"οδυσσευς", "οδυσσευσ"},
		{"ſam", "sam"},
		{"µ", "μ"},
		{"\u212Aelvin", "kelvin"},
		{"ϐήτα", "βήτα"},
		{"straße STRASSE ẞ", "straße strasse ß"},
		{"ǅemal", "ǆemal"},
		{"İstanbul", "istanbul"},
		{"bad \xff byte", "bad \xff byte"},
	} {
		got := domain.FoldCase(c.in)
		if got != c.want {
			t.Errorf("FoldCase(%q) = %q, want %q", c.in, got, c.want)
		}
		if utf8.ValidString(c.in) && !strings.EqualFold(got, c.in) && got != strings.ToLower(c.in) {
			t.Errorf("FoldCase(%q) = %q, which EqualFold tells apart from it", c.in, got)
		}
	}
}
