package domain

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// The rule shared by every name and tag that people type and other people read (display
// names, API key names, ECG lead names, image tags; image file names are cleaned by it): no
// character that does not show as itself. Such a character makes two names that look the same
// on screen differ ("Ada" and "Ada" followed by a zero width space), hides text (a name made
// only of Hangul fillers), or changes how the text around it is shown (a right-to-left
// override turns "photo\u202Egnp.exe" into "photoexe.png"). Free text (post texts, image
// descriptions) does not follow it: there these characters have honest uses (a zero width
// space marks word breaks in Thai, a right-to-left mark orders a Hebrew sentence that quotes
// an English word) and nothing is told apart by them.
//
// What a name may not contain (ForbiddenInName):
//   - control characters (Cc): C0 (tab and line feed included), DEL and C1;
//   - format characters (Cf), which are invisible by definition: the bidirectional marks,
//     embeddings, overrides and isolates (U+200E, U+200F, U+061C, U+202A to U+202E, U+2066 to
//     U+2069), the zero width space (U+200B), the word joiner and invisible operators (U+2060
//     to U+2064), the byte order mark (U+FEFF), the soft hyphen (U+00AD), the interlinear
//     annotation controls, the tag characters (U+E0000 to U+E007F), ... but not the zero width
//     non-joiner and joiner (U+200C, U+200D): Persian and Indic names need them to be spelled
//     right, and emoji sequences (👩‍💻) are joined by them;
//   - the line and paragraph separators (U+2028, U+2029);
//   - the other default-ignorable code points, which fonts draw as nothing: the Hangul fillers
//     (U+115F, U+1160, U+3164, U+FFA0), the combining grapheme joiner (U+034F), U+17B4, U+17B5,
//     and those reserved for future format characters;
//   - the noncharacters (U+FDD0 to U+FDEF and the last two code points of every plane), which
//     Unicode keeps for a program's internal use, never for interchange.
//
// Variation selectors stay allowed (U+FE0F makes ❤ the emoji ❤️; U+E0100 and up choose a
// glyph of a CJK ideograph in Japanese names), and so do private-use characters and code
// points that Go's Unicode tables (15.0) do not assign yet: they are shown, as a vendor's glyph
// or as a box, and refusing the unassigned ones would refuse the emoji of newer Unicode
// versions that phones already offer. The one use of tag characters in names, the subdivision
// flags (🏴 followed by tags and a cancel tag, such as the flag of Scotland), is allowed as a
// whole sequence (see InvisibleInName).

// ForbiddenInName reports whether r may never appear in a name or a tag (see above). Tag
// characters are reported too: only InvisibleInName knows the sequences they may form.
func ForbiddenInName(r rune) bool {
	switch {
	case r == zeroWidthNonJoiner || r == zeroWidthJoiner:
		return false
	case r < ' ' || r >= 0x7f && r <= 0x9f: // Cc
		return true
	case r < 0xa0:
		return false // printable ASCII: the common case, answered without table look-ups
	case r == '\u2028' || r == '\u2029' || noncharacter(r):
		return true
	}
	return unicode.In(r, unicode.Cf, unicode.Other_Default_Ignorable_Code_Point)
}

const (
	zeroWidthNonJoiner = '\u200c'
	zeroWidthJoiner    = '\u200d'
	// A subdivision flag is the black flag, tag characters spelling a region (gbsct) and the
	// cancel tag (Unicode Technical Standard 51, emoji tag sequences).
	blackFlag  = '\U0001F3F4'
	tagFirst   = '\U000E0020'
	tagLast    = '\U000E007E'
	cancelTag  = '\U000E007F'
	maxTagSpec = 32 // far more than any region code needs; bounds a run of invisible tags
)

// noncharacter reports whether r is one of the 66 noncharacters.
func noncharacter(r rune) bool {
	return r >= 0xfdd0 && r <= 0xfdef || r&0xfffe == 0xfffe
}

// InvisibleInName returns the first character of s that a name or a tag may not contain
// (ForbiddenInName, except the tag characters of a well-formed subdivision flag) and true, or
// false when there is none. s must be valid UTF-8 (callers check it first and refuse it with a
// message of its own); an invalid byte is reported as U+FFFD.
func InvisibleInName(s string) (rune, bool) {
	afterFlag := false
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return r, true
		}
		if afterFlag && r >= tagFirst && r <= tagLast {
			if end, ok := flagTags(s[i:]); ok {
				i += end
				afterFlag = false
				continue
			}
		}
		if ForbiddenInName(r) {
			return r, true
		}
		afterFlag = r == blackFlag
		i += n
	}
	return 0, false
}

// flagTags returns the length of the tag characters and the cancel tag at the start of s, and
// whether they form the tail of a subdivision flag: 1 to maxTagSpec tags, then the cancel tag.
func flagTags(s string) (int, bool) {
	i := 0
	for tags := 0; i < len(s); tags++ {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == cancelTag && tags > 0:
			return i + n, true
		case r < tagFirst || r > tagLast || tags == maxTagSpec:
			return 0, false
		}
		i += n
	}
	return 0, false
}

// CheckNameChars returns a validation error of field when s holds a character a name or a tag
// may not contain, naming the first one by its code point: the character itself would not
// show in the message either.
//
// A name that is not empty must also hold a character that shows by itself: one made only of
// the joiners, combining marks or spaces that the rule above lets through (a key named U+200D,
// a name that is one accent) would be an entry nobody can see or tell apart.
func CheckNameChars(field, s string) error {
	if r, bad := InvisibleInName(s); bad {
		return Invalid(field, NameCharsMessage(r))
	}
	if s != "" && !hasVisible(s) {
		return Invalid(field, "must contain a visible character, not only joiners, combining marks or spaces")
	}
	return nil
}

// hasVisible reports whether s holds a character that is drawn by itself: not a space
// separator, a combining mark (whose glyph sits on the character before it, variation
// selectors included) or a zero width joiner or non-joiner.
func hasVisible(s string) bool {
	for _, r := range s {
		if r > ' ' && r < 0x7f {
			return true // printable ASCII other than the space: the common case
		}
		if r != zeroWidthNonJoiner && r != zeroWidthJoiner && !unicode.In(r, unicode.Z, unicode.Mn, unicode.Me) {
			return true
		}
	}
	return false
}

// NameCharsMessage is the message of a name holding r, which ForbiddenInName reports.
func NameCharsMessage(r rune) string {
	return fmt.Sprintf("must not contain invisible or control characters (%U)", r)
}
