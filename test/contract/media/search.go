package media

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/media/image"
	mediaport "github.com/acme/postsvc/ports/media"
	"github.com/acme/postsvc/test/contract"
)

// assertSearch lists base with the search q (image.ParseQuery, as the use case parses it),
// in pages of two, and checks that it finds exactly want, newest first.
func assertSearch(t testing.TB, b Backend, base mediaport.ListQuery, q string, want []image.ID) {
	t.Helper()
	query, ok := image.ParseQuery(q)
	if !ok {
		t.Fatalf("ParseQuery(%q) refused", q)
	}
	base.Search = query
	got := listAll(t, b, base, 2)
	if want := contract.NewestFirst(want); !slices.Equal(got, want) {
		t.Errorf("search %q (owner %q, visibility %q) found %v, want %v", q, base.Owner, base.Visibility, got, want)
	}
}

func searchTests() []contract.Test[Backend] {
	return []contract.Test[Backend]{
		{Name: "words, case, accents, punctuation, operators", Run: testSearchWords},
		{Name: "combined with owner, visibility and cursor", Run: testSearchScoped},
		{Name: "long words and many words", Run: testSearchLong},
		{Name: "a token that is not one of ours finds nothing", Run: testSearchForeignToken},
		{Name: "the index forgets deleted images", Run: testSearchForgets},
		{Name: "the largest documents", Run: testSearchLargest},
	}
}

// corpus is the images every search case runs on, by name: description, tags and file name.
var corpus = []struct {
	name, description, filename string
	tags                        []string
}{
	{"ox", "An ox in a field", "field.png", []string{"farm"}},
	{"cat", "The black-cat, SLEEPING on it.", "IMG_2024.jpg", []string{"pets"}},
	{"cafe", "Café au lait", "O'Neil.gif", []string{"été", "drinks"}},
	{"dog", "A dog or two", "dog.webp", []string{"pets", "cat-friends"}},
	{"catalog", "Catalog of cats", "catalog.png", nil},
	{"nothing", "", "image.png", nil},
	{"odysseus", "ΟΔΥΣΣΕΥΣ", "ſtraße.png", []string{"µm"}},
}

func testSearchWords(t *testing.T, b Backend) {
	owner := b.NewUser(t)
	ids := map[string]image.ID{}
	var all []image.ID
	for _, c := range corpus {
		img := addImage(t, b, owner, c.filename, details(t, image.Private, c.description, c.tags...), 1)
		ids[c.name] = img.ID()
		all = append(all, img.ID())
	}
	cases := map[string][]string{
		// Words of any length, stop words included.
		"a": {"ox", "dog"}, "ox": {"ox"}, "OX": {"ox"}, "cat": {"cat", "dog"}, "the": {"cat"},
		"it": {"cat"}, "the it": {"cat"}, "an": {"ox"}, "in a": {"ox"}, "o": {"cafe"},
		// Case and accents are ignored, on both sides.
		"cafe": {"cafe"}, "CAFÉ": {"cafe"}, "Café": {"cafe"}, "cafe\u0301": {"cafe"},
		"sleeping": {"cat"}, "Sleeping": {"cat"}, "ete": {"cafe"}, "ÉTÉ": {"cafe"},
		// Case folding, not lower-casing: final sigma, long s and the micro sign meet their
		// other forms, and ß (ẞ) is "ss", as Unicode's full case folding has it.
		"οδυσσευς": {"odysseus"}, "ΟΔΥΣΣΕΥΣ": {"odysseus"}, "οδυσσευσ": {"odysseus"},
		"strasse": {"odysseus"}, "STRASSE": {"odysseus"}, "straße": {"odysseus"}, "STRAẞE": {"odysseus"},
		"strase": nil, "μm": {"odysseus"}, "ΜM": {"odysseus"},
		// Punctuation splits words in documents and queries alike.
		"black": {"cat"}, "black-cat,": {"cat"}, "black cat": {"cat"}, "o'neil": {"cafe"},
		"neil": {"cafe"}, "O'NEIL!": {"cafe"}, "friends": {"dog"}, "cat-friends": {"dog"},
		// Tags and file names are searched; '_' and '.' split a file name.
		"pets": {"cat", "dog"}, "drinks": {"cafe"}, "farm": {"ox"}, "img": {"cat"},
		"2024": {"cat"}, "img_2024": {"cat"}, "IMG_2024.jpg": {"cat"}, "jpg": {"cat"},
		"png": {"ox", "catalog", "nothing", "odysseus"}, "image": {"nothing"},
		// Every word must match.
		"black dog": nil, "cat dog": {"dog"}, "au lait cafe": {"cafe"}, "zebra": nil,
		// A prefix of a word is not the word; nor is a longer word.
		"ca": nil, "cats": {"catalog"}, "catalo": nil, "catalogs": nil, "blac": nil, "ne": nil,
		// Operators mean nothing: "+cat -dog" is the words cat and dog, "or" a word.
		"+cat -dog": {"dog"}, "cat*": {"cat", "dog"}, `"cat"`: {"cat", "dog"}, "cat OR dog": {"dog"},
		"or": {"dog"}, "(cat)": {"cat", "dog"}, "~cat <dog": {"dog"}, "cat NEAR dog": nil,
		"ca*": nil, "c?t": nil, "cat AND NOT dog": nil, "@cat": {"cat", "dog"},
	}
	for q, names := range cases {
		want := make([]image.ID, len(names))
		for i, n := range names {
			want[i] = ids[n]
		}
		assertSearch(t, b, mediaport.ListQuery{Owner: owner}, q, want)
	}
	// A query without words is no search.
	for _, q := range []string{"", " ", " ,.!?-+*\"' "} {
		assertSearch(t, b, mediaport.ListQuery{Owner: owner}, q, all)
	}
}

func testSearchScoped(t *testing.T, b Backend) {
	one, two := b.NewUser(t), b.NewUser(t)
	add := func(owner identity.UserID, vis image.Visibility, desc string) image.ID {
		return addImage(t, b, owner, "x.png", details(t, vis, desc), 1).ID()
	}
	oneCatPrivate := add(one, image.Private, "cat")
	oneCatPublic := add(one, image.Public, "a cat")
	oneDogPublic := add(one, image.Public, "dog")
	twoCatPublic := add(two, image.Public, "Cat!")
	twoCatPrivate := add(two, image.Private, "cat")
	var manyCats []image.ID
	for i := range 5 {
		manyCats = append(manyCats, add(one, image.Public, fmt.Sprintf("cat number %d", i)))
	}

	mine := append([]image.ID{oneCatPrivate, oneCatPublic}, manyCats...)
	assertSearch(t, b, mediaport.ListQuery{Owner: one}, "cat", mine)
	assertSearch(t, b, mediaport.ListQuery{Owner: one, Visibility: image.Private}, "cat", []image.ID{oneCatPrivate})
	assertSearch(t, b, mediaport.ListQuery{Owner: one, Visibility: image.Public}, "cat", append([]image.ID{oneCatPublic}, manyCats...))
	assertSearch(t, b, mediaport.ListQuery{Owner: two}, "cat", []image.ID{twoCatPublic, twoCatPrivate})
	assertSearch(t, b, mediaport.ListQuery{}, "cat", append([]image.ID{oneCatPublic, twoCatPublic}, manyCats...))
	assertSearch(t, b, mediaport.ListQuery{}, "dog", []image.ID{oneDogPublic})
	assertSearch(t, b, mediaport.ListQuery{Visibility: image.Private}, "cat", nil)
	assertSearch(t, b, mediaport.ListQuery{}, "cat number", manyCats)
	assertSearch(t, b, mediaport.ListQuery{}, "number 3", manyCats[3:4])

	// A page of a search ends where the limit says and goes on below its cursor.
	want := contract.NewestFirst(append([]image.ID{oneCatPublic, twoCatPublic}, manyCats...))
	q, _ := image.ParseQuery("cat")
	page, err := b.Images().List(t.Context(), mediaport.ListQuery{Search: q, Limit: 3})
	contract.NoErr(t, "List", err)
	if !page.More || !slices.Equal(idsOf(page.Images), want[:3]) {
		t.Fatalf("first page = %v more %v, want %v", idsOf(page.Images), page.More, want[:3])
	}
	page, err = b.Images().List(t.Context(), mediaport.ListQuery{Search: q, Limit: 3, Before: want[2]})
	contract.NoErr(t, "List", err)
	if !page.More || !slices.Equal(idsOf(page.Images), want[3:6]) {
		t.Fatalf("second page = %v more %v, want %v", idsOf(page.Images), page.More, want[3:6])
	}
	page, err = b.Images().List(t.Context(), mediaport.ListQuery{Search: q, Limit: 3, Before: want[5]})
	contract.NoErr(t, "List", err)
	if page.More || !slices.Equal(idsOf(page.Images), want[6:]) {
		t.Fatalf("last page = %v more %v, want %v", idsOf(page.Images), page.More, want[6:])
	}
}

func testSearchLong(t *testing.T, b Backend) {
	owner := b.NewUser(t)
	long := strings.Repeat("x", 60)
	sixteen := make([]string, image.MaxQueryWords)
	for i := range sixteen {
		sixteen[i] = fmt.Sprintf("w%d", i)
	}
	longImg := addImage(t, b, owner, "a.png", details(t, image.Private, "a "+long+" "+strings.Repeat("é", 30)), 1)
	manyImg := addImage(t, b, owner, "b.png", details(t, image.Private, strings.Join(sixteen, " ")), 1)
	full := addImage(t, b, owner, "c.png", details(t, image.Private, strings.Repeat("word ", image.MaxDescriptionChars/5)), 1)
	tags := make([]string, image.MaxTags)
	for i := range tags {
		tags[i] = fmt.Sprintf("%c%s", 'a'+i, strings.Repeat("界", image.MaxTagChars-1))
	}
	tagged := addImage(t, b, owner, strings.Repeat("名", 83)+".png", details(t, image.Private, "", tags...), 1)

	assertSearch(t, b, mediaport.ListQuery{Owner: owner}, long, []image.ID{longImg.ID()})
	assertSearch(t, b, mediaport.ListQuery{Owner: owner}, strings.Repeat("E", 30), []image.ID{longImg.ID()})
	assertSearch(t, b, mediaport.ListQuery{Owner: owner}, strings.Join(sixteen, " "), []image.ID{manyImg.ID()})
	assertSearch(t, b, mediaport.ListQuery{Owner: owner}, "word", []image.ID{full.ID()})
	assertSearch(t, b, mediaport.ListQuery{Owner: owner}, tags[19], []image.ID{tagged.ID()})
	assertSearch(t, b, mediaport.ListQuery{Owner: owner}, tags[0]+" "+tags[19]+" png", []image.ID{tagged.ID()})
	assertSearch(t, b, mediaport.ListQuery{Owner: owner}, "a", []image.ID{longImg.ID()})
	// A long word matches itself only: not a longer or shorter word that shares its first
	// 41 bytes, as it did while long words were cut.
	assertSearch(t, b, mediaport.ListQuery{Owner: owner}, strings.Repeat("x", 61), nil)
	assertSearch(t, b, mediaport.ListQuery{Owner: owner}, strings.Repeat("x", 59), nil)
	assertSearch(t, b, mediaport.ListQuery{Owner: owner}, strings.Repeat("X", 60), []image.ID{longImg.ID()})
}

// testSearchForeignToken hands the repository tokens that image.ParseQuery would never make:
// no document holds them, so nothing is found, and no query language reads them as syntax.
func testSearchForeignToken(t *testing.T, b Backend) {
	owner := b.NewUser(t)
	addImage(t, b, owner, "a.png", details(t, image.Public, "cat dog"), 1)
	cat, _ := image.ParseQuery("cat")
	dog, _ := image.ParseQuery("dog")
	for _, tokens := range [][]string{
		{cat.Tokens[0] + `" OR "` + dog.Tokens[0]},
		{cat.Tokens[0] + "*"},
		{"-" + cat.Tokens[0]},
		{cat.Tokens[0][:3] + "*"},
		{"cat"},
		{""},
		{cat.Tokens[0], "w"},
	} {
		page, err := b.Images().List(t.Context(), mediaport.ListQuery{Search: image.Query{Tokens: tokens}, Limit: 10})
		contract.NoErr(t, fmt.Sprintf("List %q", tokens), err)
		if len(page.Images) != 0 {
			t.Errorf("tokens %q found %d images", tokens, len(page.Images))
		}
	}
}

// testSearchForgets deletes the newest image each way an image goes (Delete, DeleteByOwner,
// the owner's deletion), then adds another with other words: a search for the deleted
// image's words must find nothing. An index that kept the deleted image's entry would hand it
// to whatever row comes next in its place (SQLite gives the next row the rowid just freed).
func testSearchForgets(t *testing.T, b Backend) {
	ctx := t.Context()
	keeper := b.NewUser(t)
	addImage(t, b, keeper, "kept.png", details(t, image.Public, "kept"), 1)
	for _, how := range []string{"delete", "delete by owner", "user deletion"} {
		owner := b.NewUser(t)
		img := addImage(t, b, owner, "gone.png", details(t, image.Public, "vanished words"), 1)
		switch how {
		case "delete":
			_, err := b.Images().Delete(ctx, owner, []image.ID{img.ID()})
			contract.NoErr(t, "Delete", err)
		case "delete by owner":
			contract.NoErr(t, "DeleteByOwner", b.Images().DeleteByOwner(ctx, owner))
		default:
			b.DeleteUser(t, owner)
		}
		next := addImage(t, b, keeper, "next.png", details(t, image.Public, "fresh"), 1)
		assertSearch(t, b, mediaport.ListQuery{}, "vanished", nil)
		assertSearch(t, b, mediaport.ListQuery{Owner: keeper}, "words", nil)
		assertSearch(t, b, mediaport.ListQuery{}, "fresh", []image.ID{next.ID()})
		_, err := b.Images().Delete(ctx, keeper, []image.ID{next.ID()})
		contract.NoErr(t, "Delete", err)
	}
}

// testSearchLargest stores an image whose description, tags and file name are as long as the
// contract admits and made of words whose folded forms are long (squared katakana and Hangul
// syllables decompose to several letters of three bytes each), so its search document is
// some 15 KB where a typical one is a few hundred bytes, and finds it by words of each.
func testSearchLargest(t *testing.T, b Backend) {
	owner := b.NewUser(t)
	// next returns n characters from base on, never the same run twice.
	runs := map[rune]rune{}
	next := func(base, size rune, n int) string {
		var w strings.Builder
		for range n {
			w.WriteRune(base + runs[base]%size)
			runs[base]++
		}
		return w.String()
	}
	var desc []string
	for len(desc)*4+3 <= image.MaxDescriptionChars {
		desc = append(desc, next(0x3300, 0x58, 3)) // squared katakana: ㌀ is アパート
	}
	tags := make([]string, image.MaxTags)
	for i := range tags {
		var words []string
		for len(words)*4+3 <= image.MaxTagChars {
			words = append(words, next(0xAC00, 11172, 3)) // Hangul: 한 is three jamo
		}
		tags[i] = strings.Join(words, "-")
	}
	var file []string
	for len(strings.Join(file, "_"))+10+4 <= image.MaxFilenameBytes {
		file = append(file, next(0xAC00, 11172, 3))
	}
	filename := strings.Join(file, "_") + ".png"
	d := details(t, image.Private, strings.Join(desc, " "), tags...)
	doc := image.SearchDocument(filename, d)
	if len(doc) < 12_000 {
		t.Fatalf("the test document is only %d bytes", len(doc))
	}
	img := addImage(t, b, owner, filename, d, 1)
	if img.Filename() != filename {
		t.Fatalf("file name cut to %q", img.Filename())
	}
	got, err := b.Images().Get(t.Context(), img.ID())
	contract.NoErr(t, "Get", err)
	assertSameImage(t, got, img)
	for _, q := range []string{desc[0], desc[len(desc)-1], tags[19], file[len(file)-1], desc[7] + " " + tags[3] + " png"} {
		assertSearch(t, b, mediaport.ListQuery{Owner: owner}, q, []image.ID{img.ID()})
	}
	assertSearch(t, b, mediaport.ListQuery{Owner: owner}, desc[0]+"x", nil)
}
