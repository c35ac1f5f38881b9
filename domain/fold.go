package domain

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// FoldCase returns s in a form where strings that differ only in case are equal: what
// strings.EqualFold calls equal (Unicode simple case folding), FoldCase makes identical. Each
// character becomes one chosen among the characters it folds with (see FoldRune), so that
// letters with more than one lower-case form meet: final sigma ς and σ, long s ſ and s, the
// micro sign µ and μ, ϐ and β, the Kelvin sign and k. Plain lower-casing keeps those apart,
// and an email, a name search or an image search keyed by it would tell them apart. What
// lower-casing merges stays merged (İ becomes i, as with strings.ToLower); dotless ı, which
// folds with nothing, stays ı.
//
// Anything else is left as it is, invalid UTF-8 included. It does not normalise: callers that
// compare canonically equivalent text apply NFC or NFKD around it.
func FoldCase(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			return foldFrom(s, i)
		}
	}
	return s // ASCII without capitals: nothing to fold
}

func foldFrom(s string, i int) string {
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteByte(s[i]) // not UTF-8: kept as it is
		} else {
			b.WriteRune(FoldRune(r))
		}
		i += n
	}
	return b.String()
}

// FoldRune is FoldCase for one character.
func FoldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}
	// The characters r folds with form a cycle under unicode.SimpleFold (at most four); the
	// least of them stands for all. Its upper case's lower case is preferred when it is one of
	// them: the micro sign is least among µ, Μ and μ, and ypogegrammeni among the iotas.
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		least = min(least, f)
	}
	if c := unicode.ToLower(unicode.ToUpper(least)); c == r || foldsWith(r, c) {
		return c
	}
	return unicode.ToLower(least)
}

// foldsWith reports whether c is in r's cycle under unicode.SimpleFold.
func foldsWith(r, c rune) bool {
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f == c {
			return true
		}
	}
	return false
}
