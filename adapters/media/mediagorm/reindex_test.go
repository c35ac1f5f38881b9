package mediagorm_test

import (
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
	testdb.ForEach(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		driver := db.Name()
		testdb.MigrateDownTo(t, db, driver, mediagorm.ReindexMigration.Version-1)
		owner := newUser(t, db)
		pool := gormstore.NewUnitOfWork(db).Pool()
		images := mediagorm.NewStore().Images(pool)
		greek, plain := newImage(t, owner, "Οδυσσευς"), newImage(t, owner, "plain")
		if err := images.Add(ctx, []*image.Image{greek, plain}); err != nil {
			t.Fatal(err)
		}
		lowerCased := image.Token("οδυσσευς") + " " + image.Token("a") + " " + image.Token("jpg")
		if err := db.Exec("UPDATE images SET search_doc = ? WHERE id = ?", lowerCased, string(greek.ID())).Error; err != nil {
			t.Fatal(err)
		}
		q, _ := image.ParseQuery("ΟΔΥΣΣΕΥΣ")
		search := func() int {
			t.Helper()
			page, err := images.List(ctx, mediaport.ListQuery{Owner: owner, Search: q, Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			return len(page.Images)
		}
		if n := search(); n != 0 {
			t.Fatalf("before the migration the search found %d images: the lower-cased document should not match", n)
		}
		testdb.Migrate(t, db, driver)
		if n := search(); n != 1 {
			t.Errorf("after the migration the search found %d images, want the one described Οδυσσευς", n)
		}
	})
}

// TestSharpSReindexMigrationFoldsSharpS stores an image's search document as the versions
// before ß was folded to "ss" did, migrates, and finds the image by the word in capitals.
func TestSharpSReindexMigrationFoldsSharpS(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		driver := db.Name()
		testdb.MigrateDownTo(t, db, driver, mediagorm.SharpSReindexMigration.Version-1)
		owner := newUser(t, db)
		images := mediagorm.NewStore().Images(gormstore.NewUnitOfWork(db).Pool())
		street := newImage(t, owner, "Straße")
		if err := images.Add(ctx, []*image.Image{street, newImage(t, owner, "plain")}); err != nil {
			t.Fatal(err)
		}
		before := image.Token("straße") + " " + image.Token("a") + " " + image.Token("jpg")
		if err := db.Exec("UPDATE images SET search_doc = ? WHERE id = ?", before, string(street.ID())).Error; err != nil {
			t.Fatal(err)
		}
		q, _ := image.ParseQuery("STRASSE")
		search := func() int {
			t.Helper()
			page, err := images.List(ctx, mediaport.ListQuery{Owner: owner, Search: q, Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			return len(page.Images)
		}
		if n := search(); n != 0 {
			t.Fatalf("before the migration the search found %d images: the old document should not match", n)
		}
		testdb.Migrate(t, db, driver)
		if n := search(); n != 1 {
			t.Errorf("after the migration the search found %d images, want the one described Straße", n)
		}
	})
}
