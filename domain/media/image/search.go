package image

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/acme/postsvc/domain"
)

// Search. An image is found by the words of its description, tags and file name: a word is a
// run of letters and digits, compared without case and accents ("Café" matches "cafe"). Every
// word of a query must match a word of the image, whatever its length ("ox" included), and
// nothing in a query is an operator.
//
// Full-text engines differ in what they index: MySQL's InnoDB parser skips words shorter than
// innodb_ft_min_token_size (3, a read-only server setting) and a list of stop words ("the",
// "a", "it"); MariaDB has no ngram parser. So the stored search document is not the words but
// one token per word, made of the folded word's bytes in hex behind a letter: "ox" is
// "w6f78" (a word over maxWordBytes has a hash instead). Every token is at least 3 characters of [a-z0-9], no stop word, and indexed alike
// by InnoDB FULLTEXT and SQLite FTS5, which then only ever match whole tokens.

// maxWordBytes is the longest folded word whose token is its bytes in hex: InnoDB indexes
// tokens of up to 84 characters, and "w" and 82 hex digits make 83. A longer word's token is
// "h" and the first 20 bytes of the word's SHA-256 in hex, so a long word, too, matches only
// itself (until migration 14, long words were cut to their first 41 bytes and matched any word
// that began with them).
const maxWordBytes = 41

// MaxQueryWords bounds the words of a search query.
const MaxQueryWords = 16

// Words splits text into folded words: case folded, without accents, in order, repeats kept.
func Words(text string) []string {
	folded := fold(text)
	return strings.FieldsFunc(folded, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// fold case folds s (domain.FoldRune) and removes its accents (combining marks after
// compatibility decomposition). Sharp s (ß, and capital ẞ, which folds to it) becomes "ss", as
// Unicode's full case folding has it, so that "STRASSE" finds "Straße"; the other characters
// that full folding expands (ligatures such as "ﬁ", "ŉ") are expanded already by the
// compatibility decomposition.
func fold(s string) string {
	s = strings.ToValidUTF8(s, " ")
	var b strings.Builder
	for _, r := range norm.NFKD.String(s) {
		if unicode.Is(unicode.Mn, r) {
			continue
		}
		if r = domain.FoldRune(r); r == 'ß' {
			b.WriteString("ss")
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Token is the indexed form of a folded word.
func Token(word string) string {
	if len(word) > maxWordBytes {
		sum := sha256.Sum256([]byte(word))
		return "h" + hex.EncodeToString(sum[:20])
	}
	return "w" + hex.EncodeToString([]byte(word))
}

// SearchDocument is what the search index holds for an image: the tokens of the words of its
// description, tags and file name, each once, separated by spaces.
func SearchDocument(filename string, d Details) string {
	seen := map[string]bool{}
	var tokens []string
	add := func(text string) {
		for _, w := range Words(text) {
			if t := Token(w); !seen[t] {
				seen[t] = true
				tokens = append(tokens, t)
			}
		}
	}
	add(d.Description)
	for _, t := range d.Tags {
		add(t)
	}
	add(filename)
	return strings.Join(tokens, " ")
}

// Query is a parsed search: the tokens every match must hold. No tokens means no search,
// unless Nothing is set.
type Query struct {
	Tokens []string
	// Nothing marks a query with text but no word in it ("%", "🎉", "..."): it matches no
	// image. With no word to hold, every image would match, and a search for "%" that lists
	// everything reads as a wildcard let through to the database.
	Nothing bool
}

// ParseQuery splits q into words; punctuation and operators are separators like spaces.
func ParseQuery(q string) (Query, bool) {
	words := Words(q)
	seen := map[string]bool{}
	var out Query
	for _, w := range words {
		if t := Token(w); !seen[t] {
			seen[t] = true
			out.Tokens = append(out.Tokens, t)
		}
	}
	out.Nothing = len(out.Tokens) == 0 && strings.TrimSpace(q) != ""
	return out, len(out.Tokens) <= MaxQueryWords
}
