package image_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/acme/postsvc/domain/media/image"
)

// TestCleanFilenameCutsBetweenCharacters: a name over 255 bytes is cut at most at 255 bytes
// and never inside a character as a reader sees it: a joined emoji, a flag, a letter and its
// combining marks, an emoji and its skin tone or variation selector go whole or not at all.
func TestCleanFilenameCutsBetweenCharacters(t *testing.T) {
	for _, tc := range []struct {
		name, tail string // the name is padding of "a" then tail, 2 bytes past the limit
		keep       string // what of tail survives
	}{
		{"joined emoji", "👨\u200d👩\u200d👧", ""},
		{"flag", "🇩🇪", ""},
		{"second flag", "🇫🇷🇩🇪", "🇫🇷"},
		{"combining marks", "x\u0323\u0307", ""}, // no precomposed form with both marks
		{"skin tone", "👍\U0001F3FD", ""},
		{"variation selector", "a\u2764\ufe0f", "a"},
		{"keycap", "b1\ufe0f\u20e3", "b"},
		{"devanagari", "\u0915\u094d\u0937", "\u0915\u094d"}, // the virama extends; the next letter starts anew
		{"plain", "bcd", "b"},
		{"two-byte letters", "ééé", "éé"},
	} {
		pad := strings.Repeat("a", image.MaxFilenameBytes+2-len(tc.tail))
		got := image.CleanFilename(pad+tc.tail, image.FormatPNG)
		if len(got) > image.MaxFilenameBytes || !utf8.ValidString(got) {
			t.Errorf("%s: %d bytes, valid %v", tc.name, len(got), utf8.ValidString(got))
			continue
		}
		if want := pad + tc.keep; got != want {
			t.Errorf("%s: kept %q of %q, want %q", tc.name, strings.TrimPrefix(got, pad), tc.tail, tc.keep)
		}
	}
	// A run of joined runes longer than the limit is cut at a rune all the same.
	long := "a" + strings.Repeat("\u0301", 200)
	if got := image.CleanFilename(long, image.FormatPNG); len(got) == 0 || len(got) > image.MaxFilenameBytes || !utf8.ValidString(got) {
		t.Errorf("a letter with 200 marks: %d bytes", len(got))
	}
}

// TestCleanFilenameKeepsTheExtensionWhenCut: a name over 255 bytes loses the end of its stem,
// not its extension (an outside probe's 400 x's and ".png" came back as 255 x's); an
// extension too long to be one is cut like the rest.
func TestCleanFilenameKeepsTheExtensionWhenCut(t *testing.T) {
	for _, tc := range []struct{ raw, suffix string }{
		{strings.Repeat("x", 400) + ".png", strings.Repeat("x", 10) + ".png"},
		{strings.Repeat("é", 200) + ".jpeg", "é.jpeg"},
		{"a." + strings.Repeat("y", 300), strings.Repeat("y", 10)},
	} {
		got := image.CleanFilename(tc.raw, image.FormatPNG)
		if len(got) > image.MaxFilenameBytes || !utf8.ValidString(got) || !strings.HasSuffix(got, tc.suffix) {
			t.Errorf("%.20q...: %d bytes, ends %q; want at most %d bytes ending %q",
				tc.raw, len(got), got[max(len(got)-16, 0):], image.MaxFilenameBytes, tc.suffix)
		}
	}
	if got := image.CleanFilename(strings.Repeat("x", 400)+".png", image.FormatPNG); len(got) != image.MaxFilenameBytes {
		t.Errorf("cut to %d bytes, want %d", len(got), image.MaxFilenameBytes)
	}
}

// TestCleanFilenameOfANamelessFile: a part without a name is named image.<format>, and just
// "image" while its format is unknown (a 415 named it "image.").
func TestCleanFilenameOfANamelessFile(t *testing.T) {
	for f, want := range map[image.Format]string{"": "image", image.FormatJPEG: "image.jpg", image.FormatPNG: "image.png"} {
		for _, raw := range []string{"", " ", "dir/", "\u200b", ".."} {
			if got := image.CleanFilename(raw, f); got != want {
				t.Errorf("CleanFilename(%q, %q) = %q, want %q", raw, f, got, want)
			}
		}
	}
}
