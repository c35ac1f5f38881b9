package postsgorm

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/posts/post"
	"github.com/acme/postsvc/test/testdb"
)

// TestUsageMigrationCountsStoredPosts: migration 16 counts the posts stored before it into
// their authors' totals, so the quota holds for them at once: an author at the quota before
// the migration is refused after it, and an author without posts has no total yet.
func TestUsageMigrationCountsStoredPosts(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		now := time.Now().UTC()
		var authors [3]identity.UserID
		for i := range authors {
			authors[i] = identity.UserID(fmt.Sprintf("01900000-0000-7000-8000-0000000001%02d", i))
			if err := db.Exec(`INSERT INTO users (id, email, password_hash, role, created_at, updated_at) VALUES (?, ?, 'h', 'user', ?, ?)`,
				string(authors[i]), fmt.Sprintf("u%d@x.io", i), now, now).Error; err != nil {
				t.Fatal(err)
			}
		}
		driver := db.Name()
		testdb.MigrateDownTo(t, db, driver, 15)
		if db.Migrator().HasTable("post_usage") {
			t.Fatal("post_usage left after migration 16 was reverted")
		}
		// Posts stored before the migration, straight into the table (the repository of this
		// version counts them itself).
		texts := map[identity.UserID][]string{authors[0]: {"1234", "é"}, authors[1]: {strings.Repeat("x", 100)}}
		n := 0
		for author, ts := range texts {
			for _, text := range ts {
				n++
				if err := db.Exec(InsertSQL, fmt.Sprintf("01900000-0000-7000-8000-0000000002%02d", n), string(author), text,
					len(text), gormstore.DBTime(now)).Error; err != nil {
					t.Fatal(err)
				}
			}
		}
		testdb.Migrate(t, db, driver)
		want := map[identity.UserID]int64{authors[0]: 6, authors[1]: 100}
		for _, author := range authors {
			var rows []usageRow
			if err := db.Where("author_id = ?", string(author)).Find(&rows).Error; err != nil {
				t.Fatal(err)
			}
			w, has := want[author]
			if has && (len(rows) != 1 || rows[0].TextBytes != w) || !has && len(rows) != 0 {
				t.Fatalf("author %s: totals %+v after migration 16, want %d bytes (present: %v)", author, rows, w, has)
			}
		}
		repo := NewStore(db).Posts(gormstore.NewUnitOfWork(db).Pool())
		err := repo.Add(ctx, post.Rehydrate("01900000-0000-7000-8000-000000000301", authors[1], "y", now), 100)
		if !errors.Is(err, post.ErrQuotaExceeded) {
			t.Fatalf("an add past the quota of an author counted by the migration: %v, want post.ErrQuotaExceeded", err)
		}
		if err := repo.Add(ctx, post.Rehydrate("01900000-0000-7000-8000-000000000302", authors[0], "1234", now), 10); err != nil {
			t.Fatalf("an add within the quota after the migration: %v", err)
		}
	})
}
