package accountsgorm_test

import (
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/acme/postsvc/adapters/accounts/accountsgorm"
	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/ports/accounts"
	"github.com/acme/postsvc/test/testdb"
)

// TestNFCNamesMigrationFindsNamesHoweverAccentsAreTyped stores names as the versions before
// NFC kept them (as typed, the search form case folded as typed), migrates, and finds each
// by queries typed precomposed and decomposed; the names themselves are stored in NFC.
func TestNFCNamesMigrationFindsNamesHoweverAccentsAreTyped(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, db *gorm.DB) {
		driver := db.Name()
		testdb.MigrateDownTo(t, db, driver, accountsgorm.NFCNamesMigration.Version-1)
		now := time.Now().UTC()
		insert := func(id, email, name string) {
			t.Helper()
			if err := db.Exec(`INSERT INTO users (id, email, password_hash, name, name_lower, role, created_at, updated_at)
				VALUES (?, ?, 'h', ?, ?, 'user', ?, ?)`, id, email, name, domain.FoldCase(name), now, now).Error; err != nil {
				t.Fatal(err)
			}
		}
		insert("01900000-0000-7000-8000-000000000001", "etienne@x.io", "E\u0301tienne")
		insert("01900000-0000-7000-8000-000000000002", "amelie@x.io", "Am\u00e9lie")
		insert("01900000-0000-7000-8000-000000000003", "sam@x.io", "Sam")
		testdb.Migrate(t, db, driver)

		users := accountsgorm.NewStore(db).Users(gormstore.NewUnitOfWork(db).Pool())
		for q, want := range map[string]string{
			"\u00e9tienne":  "\u00c9tienne",
			"e\u0301tienne": "\u00c9tienne",
			"\u00c9TIENNE":  "\u00c9tienne",
			"am\u00e9lie":   "Am\u00e9lie",
			"ame\u0301lie":  "Am\u00e9lie",
			"sam":           "Sam",
		} {
			found, err := users.Search(t.Context(), accounts.UserQuery{Query: q})
			if err != nil {
				t.Fatal(err)
			}
			if len(found) != 1 || found[0].Name() != want {
				var names []string
				for _, u := range found {
					names = append(names, u.Name())
				}
				t.Errorf("search for %+q found %+q, want %+q", q, names, want)
			}
		}
	})
}
