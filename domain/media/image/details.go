package image

import (
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/acme/postsvc/domain"
)

// Limits of what an owner says about an image.
const (
	MaxDescriptionChars = 1000
	MaxTags             = 20
	MaxTagChars         = 32
	MaxFilenameBytes    = 255
)

// Visibility says who may see an image.
type Visibility string

// The visibilities. Private is the default.
const (
	Private Visibility = "private"
	Public  Visibility = "public"
)

// ParseVisibility accepts exactly "private" or "public".
func ParseVisibility(field, raw string) (Visibility, error) {
	switch v := Visibility(raw); v {
	case Private, Public:
		return v, nil
	}
	return "", domain.Invalid(field, `must be "private" or "public"`)
}

// Details is what the owner says about an image.
type Details struct {
	Visibility  Visibility
	Description string
	// Tags are lower-cased, unique, in the order first given.
	Tags []string
}

func (d Details) clone() Details {
	d.Tags = slices.Clone(d.Tags)
	if d.Tags == nil {
		d.Tags = []string{}
	}
	return d
}

// DetailsDraft is what a client sent about its images; nil fields were not sent.
type DetailsDraft struct {
	Visibility  *string
	Description *string
	Tags        *[]string
}

// Change is a validated change of details: nil fields stay as they are.
type Change struct {
	Visibility  *Visibility
	Description *string
	Tags        *[]string
}

// Apply returns d with the change applied.
func (c Change) Apply(d Details) Details {
	d = d.clone()
	if c.Visibility != nil {
		d.Visibility = *c.Visibility
	}
	if c.Description != nil {
		d.Description = *c.Description
	}
	if c.Tags != nil {
		d.Tags = slices.Clone(*c.Tags)
	}
	return d
}

// Empty reports whether the change changes nothing.
func (c Change) Empty() bool { return c.Visibility == nil && c.Description == nil && c.Tags == nil }

// ParseChange validates a draft: every problem is reported at once, each naming its field.
func ParseChange(d DetailsDraft) (Change, error) {
	var v domain.Validator
	var c Change
	if d.Visibility != nil {
		vis, err := ParseVisibility("visibility", *d.Visibility)
		v.Check(err)
		c.Visibility = &vis
	}
	if d.Description != nil {
		desc, err := ValidateDescription(*d.Description)
		v.Check(err)
		c.Description = &desc
	}
	if d.Tags != nil {
		tags, err := ValidateTags(*d.Tags)
		v.Check(err)
		c.Tags = &tags
	}
	if err := v.Err(); err != nil {
		return Change{}, err
	}
	return c, nil
}

// ParseDetails validates the details of new images: unsent fields take their defaults
// (private, no description, no tags).
func ParseDetails(d DetailsDraft) (Details, error) {
	c, err := ParseChange(d)
	if err != nil {
		return Details{}, err
	}
	return c.Apply(Details{Visibility: Private}), nil
}

// ValidateDescription checks a description: valid UTF-8, at most 1,000 characters, no
// control characters but line breaks and tabs. It is kept as sent, in Unicode NFC.
func ValidateDescription(raw string) (string, error) {
	if !utf8.ValidString(raw) {
		return "", domain.Invalid("description", "must be valid UTF-8")
	}
	s := norm.NFC.String(raw)
	if n := utf8.RuneCountInString(s); n > MaxDescriptionChars {
		return "", domain.Invalid("description", "must be at most 1000 characters, got "+strconv.Itoa(n))
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' {
			return "", domain.Invalid("description", "must not contain control characters")
		}
	}
	return s, nil
}

// ValidateTags checks tags: at most 20, each 1 to 32 letters, digits, '-' or '_', none of them
// a character a name or a tag may not contain (domain.InvisibleInName: the Hangul fillers are
// letters that are drawn as nothing, so a tag of them would be an invisible tag). They are
// lower-cased (in NFC) and repeats dropped.
func ValidateTags(raw []string) ([]string, error) {
	out := make([]string, 0, len(raw))
	for i, t := range raw {
		field := "tags[" + strconv.Itoa(i) + "]"
		if !utf8.ValidString(t) {
			return nil, domain.Invalid(field, "must be valid UTF-8")
		}
		t = strings.ToLower(norm.NFC.String(t))
		n := utf8.RuneCountInString(t)
		if n < 1 || n > MaxTagChars {
			return nil, domain.Invalid(field, "must be 1 to 32 characters, got "+strconv.Itoa(n))
		}
		if err := domain.CheckNameChars(field, t); err != nil {
			return nil, err
		}
		if err := tagChars(field, t); err != nil {
			return nil, err
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	if len(out) > MaxTags {
		return nil, domain.Invalid("tags", "must be at most 20 tags, got "+strconv.Itoa(len(out)))
	}
	return out, nil
}

// tagChars checks that a tag holds only letters, digits, '-' and '_'. A letter is written as
// its script writes it: the combining marks that follow a letter or a digit (the vowel signs
// of Devanagari, "हिंदी"; accents NFC has no precomposed form for) are part of it, and the
// zero width non-joiner and joiner may stand between two of them (Persian "می‌خواهم").
func tagChars(field, t string) error {
	runes := []rune(t)
	for i, r := range runes {
		wordChar := func(j int) bool {
			return j >= 0 && j < len(runes) && (unicode.IsLetter(runes[j]) || unicode.IsDigit(runes[j]) || unicode.Is(unicode.M, runes[j]))
		}
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
		case unicode.Is(unicode.M, r) && i > 0 && wordChar(i-1):
		case (r == '\u200c' || r == '\u200d') && wordChar(i-1) && wordChar(i+1):
		default:
			return domain.Invalid(field, "may hold only letters, digits, '-' and '_', found "+strconv.QuoteRune(r))
		}
	}
	return nil
}

// SplitTags splits the comma-separated tags of a multipart upload; spaces around commas are
// ignored and an empty value means no tags.
func SplitTags(raw string) []string {
	if strings.TrimSpace(raw) == "" {
		return []string{}
	}
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
	}
	return parts
}

// clusterCut is where s is cut to keep at most n of its bytes without splitting a character
// as a reader sees one: the cut falls on a rune boundary, and is moved back past a rune that
// would end the kept part apart from what follows it (a base before its combining marks,
// variation selector or skin tone, either side of a zero width joiner, the first half of a
// flag's pair of regional indicators). Cut at the rune alone, "👨‍👩‍👧" kept "👨" or "👨" and a
// dangling joiner, "🇩🇪" a lone "🇩", and "e" lost its accent when no precomposed form exists.
// These are the extending rules of Unicode's grapheme clusters (UAX #29) that names meet; a
// run of joined runes longer than n is cut at a rune.
func clusterCut(s string, n int) int {
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	for back := cut; back > 0; {
		next, _ := utf8.DecodeRuneInString(s[back:])
		prev, size := utf8.DecodeLastRuneInString(s[:back])
		joined := extendsCluster(next) || prev == zwj ||
			isRegionalIndicator(prev) && isRegionalIndicator(next) && regionalRun(s[:back])%2 == 1
		if !joined {
			return back
		}
		back -= size
	}
	return cut
}

const zwj = '\u200d'

// extendsCluster reports whether r belongs to the character before it: a combining mark, a
// zero width joiner, a variation selector, an emoji skin tone or a tag character.
func extendsCluster(r rune) bool {
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Mc) || r == zwj ||
		unicode.Is(unicode.Variation_Selector, r) ||
		r >= 0x1F3FB && r <= 0x1F3FF || r >= 0xE0020 && r <= 0xE007F
}

func isRegionalIndicator(r rune) bool { return r >= 0x1F1E6 && r <= 0x1F1FF }

// regionalRun counts the regional indicators that end s: pairs make flags, so an odd count
// leaves the last one waiting for its pair.
func regionalRun(s string) int {
	n := 0
	for len(s) > 0 {
		r, size := utf8.DecodeLastRuneInString(s)
		if !isRegionalIndicator(r) {
			break
		}
		n++
		s = s[:len(s)-size]
	}
	return n
}

// maxKeptExtBytes is the longest extension (its dot included) that a cut name keeps.
const maxKeptExtBytes = 16

// CleanFilename reduces a part's file name to what is safe to keep and to send back in a
// header: its last path element (either separator), without the characters a name may not
// contain (domain.ForbiddenInName: control characters, invisible format characters such as a
// right-to-left override, which would show "photo<RLO>gnp.exe" as "photoexe.png", Hangul
// fillers, noncharacters), in NFC, at most 255 bytes (cut at a character boundary). The zero
// width joiner and non-joiner are kept, as in every name: Persian and Indic words are spelled
// with them. A file name is cleaned rather than refused, as the contract says: it comes from
// the client's file system, not from a person typing it for this service. A name with nothing
// left becomes "image" with the format's extension. A name cut to 255 bytes keeps its
// extension (up to maxKeptExtBytes) and loses the end of its stem instead.
func CleanFilename(raw string, f Format) string {
	raw = strings.ToValidUTF8(raw, "")
	raw = raw[strings.LastIndexAny(raw, `/\`)+1:]
	var b strings.Builder
	for _, r := range norm.NFC.String(raw) {
		if domain.ForbiddenInName(r) || r == utf8.RuneError {
			continue
		}
		b.WriteRune(r)
	}
	name := strings.TrimSpace(b.String())
	if name == "." || name == ".." {
		name = ""
	}
	if len(name) > MaxFilenameBytes {
		// The stem is cut and a short extension kept: a name cut to 255 bytes that lost its
		// ".png" no longer says what it holds to whoever saves the image under it.
		if ext := path.Ext(name); len(ext) > 1 && len(ext) <= maxKeptExtBytes {
			stem := name[:len(name)-len(ext)]
			name = stem[:clusterCut(stem, MaxFilenameBytes-len(ext))] + ext
		} else {
			name = name[:clusterCut(name, MaxFilenameBytes)]
		}
	}
	switch {
	case name != "":
	case f == "":
		// Not known yet (a refusal names the file before its format is): no extension
		// rather than "image.".
		name = "image"
	case f == FormatJPEG:
		name = "image.jpg"
	default:
		name = "image." + string(f)
	}
	return path.Clean(name)
}
