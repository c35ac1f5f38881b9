package mediagorm_test

import (
	"encoding/hex"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/adapters/media/mediagorm"
	"github.com/acme/postsvc/domain/media/image"
	mediaport "github.com/acme/postsvc/ports/media"
	"github.com/acme/postsvc/test/testdb"
)

// TestReindexMigrationFoldsStoredSearchDocuments stores an image's search document as the
// versions before case folding did (words lower-cased, so a final sigma stays ς), migrates,
// and finds the image by the word in capitals, whose folded form has σ.
func TestReindexMigrationFoldsStoredSearchDocuments(t *testing.T) {
	testReindex(t, mediagorm.ReindexMigration, "Οδυσσευς", image.Token("οδυσσευς"), "ΟΔΥΣΣΕΥΣ")
}

// TestSharpSReindexMigrationFoldsSharpS stores an image's search document as the versions
// before ß was folded to "ss" did, migrates, and finds the image by the word in capitals.
func TestSharpSReindexMigrationFoldsSharpS(t *testing.T) {
	testReindex(t, mediagorm.SharpSReindexMigration, "Straße", image.Token("straße"), "STRASSE")
}

// TestLongWordsReindexMigrationHashesLongWords stores an image's search document as the
// versions before migration 14 did (a word over 41 bytes cut to its first 41, in hex),
// migrates, and finds the image by the whole word, whose token is now a hash.
func TestLongWordsReindexMigrationHashesLongWords(t *testing.T) {
	word := strings.Repeat("pneumono", 6)
	testReindex(t, mediagorm.LongWordsReindexMigration, "A "+word, "w"+hex.EncodeToString([]byte(word[:41])), strings.ToUpper(word))
}

// testReindex migrates down to just before m, stores an image described description whose
// search document holds oldToken, as the versions before m stored its word, checks that query does not
// find it, migrates up, and checks that query finds it (and nothing else).
func testReindex(t *testing.T, m gormstore.DataMigration, description, oldToken, query string) {
	testdb.ForEach(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		driver := db.Name()
		testdb.MigrateDownTo(t, db, driver, m.Version-1)
		owner := newUser(t, db)
		images := mediagorm.NewStore().Images(gormstore.NewUnitOfWork(db).Pool())
		old := newImage(t, owner, description)
		if err := images.Add(ctx, []*image.Image{old, newImage(t, owner, "plain")}); err != nil {
			t.Fatal(err)
		}
		doc := oldToken + " " + image.Token("a") + " " + image.Token("jpg")
		if err := db.Exec("UPDATE images SET search_doc = ? WHERE id = ?", doc, string(old.ID())).Error; err != nil {
			t.Fatal(err)
		}
		q, _ := image.ParseQuery(query)
		search := func() int {
			t.Helper()
			page, err := images.List(ctx, mediaport.ListQuery{Owner: owner, Search: q, Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			return len(page.Images)
		}
		if n := search(); n != 0 {
			t.Fatalf("before migration %d, %q found %d images: the old document should not match", m.Version, query, n)
		}
		testdb.Migrate(t, db, driver)
		if n := search(); n != 1 {
			t.Errorf("after migration %d, %q found %d images, want the one described %q", m.Version, query, n, description)
		}
	})
}
