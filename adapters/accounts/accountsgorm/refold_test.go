package accountsgorm_test

import (
	"os"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/acme/postsvc/adapters/accounts/accountsgorm"
	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/ports/accounts"
	"github.com/acme/postsvc/test/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// TestRefoldMigrationRekeysLowerCasedAccounts stores accounts as the versions before case
// folding did (addresses and names' search form lower-cased), migrates, and finds them however
// their address is typed; an address that folds to another account's is left alone.
func TestRefoldMigrationRekeysLowerCasedAccounts(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, db *gorm.DB) {
		driver := db.Name()
		testdb.MigrateDownTo(t, db, driver, accountsgorm.RefoldMigration.Version-1)
		now := time.Now().UTC()
		insert := func(id, email, name, nameLower string) {
			t.Helper()
			if err := db.Exec(`INSERT INTO users (id, email, password_hash, name, name_lower, role, created_at, updated_at)
				VALUES (?, ?, 'h', ?, ?, 'user', ?, ?)`, id, email, name, nameLower, now, now).Error; err != nil {
				t.Fatal(err)
			}
		}
		// Ids are time-ordered: the first is the oldest.
		insert("01900000-0000-7000-8000-000000000001", "sam@x.io", "Sam", "sam")
		insert("01900000-0000-7000-8000-000000000002", "οδυσσευς@x.io", "ΟΔΥΣΣΕΥΣ", "οδυσσευς")
		insert("01900000-0000-7000-8000-000000000003", "ſam@x.io", "Long S", "long s")
		insert("01900000-0000-7000-8000-000000000004", "µ@x.io", "Plain", "plain")
		testdb.Migrate(t, db, driver)

		users := accountsgorm.NewStore(db).Users(gormstore.NewUnitOfWork(db).Pool())
		for typed, want := range map[string]string{
			"ΟΔΥΣΣΕΥΣ@X.IO": "01900000-0000-7000-8000-000000000002",
			"οδυσσευς@x.io": "01900000-0000-7000-8000-000000000002",
			"οδυσσευσ@x.io": "01900000-0000-7000-8000-000000000002",
			"μ@x.io":        "01900000-0000-7000-8000-000000000004",
			"Μ@x.io":        "01900000-0000-7000-8000-000000000004",
			// ſam@x.io folds to sam@x.io, the older account's: that one is found.
			"ſam@x.io": "01900000-0000-7000-8000-000000000001",
		} {
			email, err := user.ParseEmail(typed)
			if err != nil {
				t.Fatal(err)
			}
			u, err := users.ByEmail(t.Context(), email)
			if err != nil {
				t.Errorf("%s: %v", typed, err)
				continue
			}
			if string(u.ID()) != want {
				t.Errorf("%s found %s, want %s", typed, u.ID(), want)
			}
		}
		var kept string
		if err := db.Raw("SELECT email FROM users WHERE id = ?", "01900000-0000-7000-8000-000000000003").Row().Scan(&kept); err != nil {
			t.Fatal(err)
		}
		if kept != "ſam@x.io" {
			t.Errorf("the account whose address folds to another's now has %q, want it left as ſam@x.io", kept)
		}
		// Names are searched folded: a query with a final sigma finds ΟΔΥΣΣΕΥΣ.
		found, err := users.Search(t.Context(), accounts.UserQuery{Query: "δυσσευς"})
		if err != nil {
			t.Fatal(err)
		}
		if len(found) != 1 || found[0].Name() != "ΟΔΥΣΣΕΥΣ" {
			t.Errorf("search for δυσσευς found %d users, want ΟΔΥΣΣΕΥΣ", len(found))
		}
	})
}
