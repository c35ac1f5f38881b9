package image_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/media/image"
)

func ptr[T any](v T) *T { return &v }

func content() image.Content {
	return image.Content{Format: image.FormatPNG, Bytes: 10, Width: 2, Height: 3, SHA256: make([]byte, 32)}
}

func TestNewRefusesInvalidContent(t *testing.T) {
	cases := map[string]func(*image.Content){
		"empty":           func(c *image.Content) { c.Bytes = 0 },
		"no width":        func(c *image.Content) { c.Width = 0 },
		"too many pixels": func(c *image.Content) { c.Width, c.Height = 10000, 5001 },
		"short hash":      func(c *image.Content) { c.SHA256 = c.SHA256[:31] },
		"unknown format":  func(c *image.Content) { c.Format = "bmp" },
	}
	for name, spoil := range cases {
		t.Run(name, func(t *testing.T) {
			c := content()
			spoil(&c)
			if _, err := image.New("0190a1b2-0000-7000-8000-000000000001", "u1", "a.png", c, image.Details{Visibility: image.Private}, time.Now()); err == nil {
				t.Fatal("New accepted invalid content")
			}
		})
	}
	if _, err := image.New("../x", "u1", "a.png", content(), image.Details{}, time.Now()); err == nil {
		t.Fatal("New accepted an implausible id")
	}
}

func TestDetails(t *testing.T) {
	d, err := image.ParseDetails(image.DetailsDraft{})
	if err != nil || d.Visibility != image.Private || d.Description != "" || len(d.Tags) != 0 || d.Tags == nil {
		t.Fatalf("defaults = %+v, %v; want private, no description, empty tags", d, err)
	}
	d, err = image.ParseDetails(image.DetailsDraft{
		Visibility: ptr("public"), Description: ptr("Cafe\u0301"), Tags: ptr([]string{"Cat", "cat", "ÉTÉ", "a_b-1"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if d.Visibility != image.Public || d.Description != "Café" || !slices.Equal(d.Tags, []string{"cat", "été", "a_b-1"}) {
		t.Fatalf("details = %+v; want public, NFC description, lower-cased unique tags", d)
	}
	var ve *domain.ValidationError
	_, err = image.ParseDetails(image.DetailsDraft{
		Visibility:  ptr("hidden"),
		Description: ptr(strings.Repeat("é", 1001)),
		Tags:        ptr([]string{"ok", "no space"}),
	})
	if !errors.As(err, &ve) || len(ve.Fields) != 3 {
		t.Fatalf("err = %v; want three field errors", err)
	}
	// Letters as their scripts write them: vowel signs and other combining marks after a
	// letter, and the zero width non-joiner between two letters.
	for _, tag := range []string{"हिंदी", "தமிழ்", "می\u200cخواهم", "a\u0331", "x2\u20e3"} {
		if got, err := image.ValidateTags([]string{tag}); err != nil || len(got) != 1 {
			t.Errorf("tag %q: %v, want it accepted", tag, err)
		}
	}
	for _, tags := range [][]string{{""}, {strings.Repeat("x", 33)}, {"a,b"}, {"\xff"}, {"\u0301a"}, {"-\u0301"}, {"\u200ca"}, {"a\u200c"}, {"a\u200c-b"}} {
		if _, err := image.ValidateTags(tags); err == nil {
			t.Errorf("tags %q accepted", tags)
		}
	}
	many := make([]string, 21)
	for i := range many {
		many[i] = strings.Repeat("t", i+1)
	}
	if _, err := image.ValidateTags(many); err == nil {
		t.Error("21 tags accepted")
	}
	if _, err := image.ValidateTags(append(many[:20], "t")); err != nil {
		t.Errorf("20 distinct tags and a repeat refused: %v", err)
	}
	// A tag may not hold a character a name may not contain, letters drawn as nothing
	// included; the message names it by its code point.
	for tag, want := range map[string]string{
		"\u3164":    "tags[1] must not contain invisible or control characters (U+3164).",
		"cat\u200b": "tags[1] must not contain invisible or control characters (U+200B).",
		"\ufeffcat": "tags[1] must not contain invisible or control characters (U+FEFF).",
		"ca\u115ft": "tags[1] must not contain invisible or control characters (U+115F).",
	} {
		if _, err := image.ValidateTags([]string{"ok", tag}); err == nil || err.Error() != want {
			t.Errorf("tag %+q: %v, want %q", tag, err, want)
		}
	}
	if _, err := image.ValidateDescription("a\x00b"); err == nil {
		t.Error("a control character was accepted in a description")
	}
	if _, err := image.ValidateDescription("line\nbreak\ttab"); err != nil {
		t.Errorf("line breaks and tabs refused: %v", err)
	}
}

func TestSplitTags(t *testing.T) {
	if got := image.SplitTags(" cat , Dog,bird "); !slices.Equal(got, []string{"cat", "Dog", "bird"}) {
		t.Fatalf("SplitTags = %q", got)
	}
	if got := image.SplitTags("  "); len(got) != 0 {
		t.Fatalf("SplitTags of blanks = %q, want none", got)
	}
	if _, err := image.ValidateTags(image.SplitTags("a,,b")); err == nil {
		t.Fatal("an empty tag between commas was accepted")
	}
}

func TestChangeKeepsUnsentFields(t *testing.T) {
	img, err := image.New("0190a1b2-0000-7000-8000-000000000001", "u1", "a.png", content(),
		image.Details{Visibility: image.Private, Description: "d", Tags: []string{"x"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, err := image.ParseChange(image.DetailsDraft{Visibility: ptr("public")})
	if err != nil {
		t.Fatal(err)
	}
	img.Update(c)
	if d := img.Details(); d.Visibility != image.Public || d.Description != "d" || !slices.Equal(d.Tags, []string{"x"}) {
		t.Fatalf("details = %+v", d)
	}
	if !img.VisibleTo("someone") || !img.IsPublic() {
		t.Fatal("a public image is not visible to others")
	}
}

func TestCleanFilename(t *testing.T) {
	cases := []struct{ in, want string }{
		{"photo.png", "photo.png"},
		{"../../etc/passwd", "passwd"},
		{`C:\Users\me\cat.jpg`, "cat.jpg"},
		{"a\r\nContent-Type: x\".png", "aContent-Type: x\".png"},
		{"\u202egnp.exe", "gnp.exe"},
		{"", "image.png"},
		{"..", "image.png"},
		{"dir/", "image.png"},
		{"\xff\xfe.png", ".png"},
		// The characters a name may not contain are removed; the joiners stay.
		{"a\u200bb\ufeff.png", "ab.png"},
		{"a\u2028b.png", "ab.png"},
		{"\u3164.png", ".png"},
		{"a\ufdd0.png", "a.png"},
		{"\u067e\u06cc\u0634\u200c\u0646\u0645\u0627\u06cc\u0634.png", "\u067e\u06cc\u0634\u200c\u0646\u0645\u0627\u06cc\u0634.png"},
		{"👩\u200d💻.png", "👩\u200d💻.png"},
	}
	for _, tc := range cases {
		if got := image.CleanFilename(tc.in, image.FormatPNG); got != tc.want {
			t.Errorf("CleanFilename(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	long := strings.Repeat("é", 200) + ".png"
	got := image.CleanFilename(long, image.FormatJPEG)
	if len(got) > image.MaxFilenameBytes || !strings.HasPrefix(got, "éé") || strings.ContainsRune(got, '\uFFFD') {
		t.Fatalf("long name cut to %d bytes: %q", len(got), got)
	}
	if got := image.CleanFilename("", image.FormatJPEG); got != "image.jpg" {
		t.Fatalf("empty JPEG name = %q", got)
	}
}

func TestKeys(t *testing.T) {
	id := image.ID("0190a1b2-0000-7000-8000-000000000001")
	for _, key := range []string{image.ContentKey("u1", id), image.ThumbnailKey("u1", id)} {
		owner, got, ok := image.ParseKey(key)
		if !ok || owner != "u1" || got != id {
			t.Errorf("ParseKey(%q) = %q, %q, %v", key, owner, got, ok)
		}
	}
	for _, key := range []string{"other/u1/x", "media/u1", "media//x", "media/u1/../x", "media/u1/a b"} {
		if _, _, ok := image.ParseKey(key); ok {
			t.Errorf("ParseKey(%q) accepted a key that is not an image's", key)
		}
	}
}

func TestSearch(t *testing.T) {
	doc := image.SearchDocument("IMG_2024.JPG", image.Details{Description: "The black-cat, an Ox at the Café on Maßstraße!", Tags: []string{"été", "ﬁsh"}})
	has := func(q string) bool {
		query, ok := image.ParseQuery(q)
		if !ok {
			t.Fatalf("query %q refused", q)
		}
		for _, tok := range query.Tokens {
			if !slices.Contains(strings.Fields(doc), tok) {
				return false
			}
		}
		return true
	}
	for _, q := range []string{"ox", "OX", "cafe", "CAFÉ", "black cat", "black-cat", "the", "an", "ete", "img 2024", "jpg", "+cat -ox", `"cat"`,
		"MASSSTRASSE", "maßstrasse", "MAẞSTRAẞE", "fish", "FISH"} {
		if !has(q) {
			t.Errorf("%q does not match %q", q, doc)
		}
	}
	for _, q := range []string{"ca", "dog", "cat dog", "cats", "strasse", "mastrase"} {
		if has(q) {
			t.Errorf("%q matches %q", q, doc)
		}
	}
	for _, tok := range strings.Fields(doc) {
		if len(tok) < 3 || strings.Trim(tok, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
			t.Errorf("token %q is not 3+ characters of [a-z0-9]", tok)
		}
	}
	if q, _ := image.ParseQuery(" ,.!? "); len(q.Tokens) != 0 || !q.Nothing {
		t.Errorf("punctuation only gave tokens %q, nothing %v; want none, matching nothing", q.Tokens, q.Nothing)
	}
	for _, blank := range []string{"", "   "} {
		if q, _ := image.ParseQuery(blank); len(q.Tokens) != 0 || q.Nothing {
			t.Errorf("%q gave %+v, want no search", blank, q)
		}
	}
	words := strings.Fields("a b c d e f g h i j k l m n o p")
	if q, ok := image.ParseQuery(strings.Join(words, " ") + " a A"); !ok || len(q.Tokens) != 16 {
		t.Errorf("16 distinct words (and repeats) gave %d tokens, ok %v", len(q.Tokens), ok)
	}
	if _, ok := image.ParseQuery(strings.Join(words, " ") + " q"); ok {
		t.Error("a query of 17 distinct words was accepted")
	}
}

// TestLongWordsMatchOnlyThemselves: a word of any length matches itself, however it is
// spelled, and no other word; its token stays within what InnoDB indexes (84 characters).
// Long words were cut to their first 41 bytes, so any word beginning with the same 41
// bytes matched.
func TestLongWordsMatchOnlyThemselves(t *testing.T) {
	stem := strings.Repeat("pneumono", 5) // 40 bytes
	for _, word := range []string{stem + "x", stem + "xy", stem + "éé", strings.Repeat("界", 30)} {
		doc := image.SearchDocument("a.png", image.Details{Description: "The " + word + "!"})
		has := func(q string) bool {
			query, _ := image.ParseQuery(q)
			return len(query.Tokens) == 1 && slices.Contains(strings.Fields(doc), query.Tokens[0])
		}
		if !has(word) || !has(strings.ToUpper(word)) {
			t.Errorf("%q (or in upper case) does not find %q", word, doc)
		}
		shorter := string([]rune(word)[:len([]rune(word))-1])
		for _, other := range []string{stem + "z", stem + "xyz", stem + "xz", word + "s", shorter} {
			if other != word && has(other) {
				t.Errorf("%q finds the document of %q", other, word)
			}
		}
		for _, tok := range strings.Fields(doc) {
			if len(tok) > 84 || len(tok) < 3 || strings.Trim(tok, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
				t.Errorf("token %q is not 3 to 84 characters of [a-z0-9]", tok)
			}
		}
	}
}
