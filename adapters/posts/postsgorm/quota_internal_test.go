package postsgorm

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"
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

// TestFirstAddsOfNewAuthorsDoNotDeadlock: new authors adding their first posts at once, each
// in a transaction of its own, as signups followed by a first post are. Their ids are in time
// order, so their totals' rows all go into one gap of the index. Before, each add's
// conditional UPDATE found no row and locked that gap, then inserted the row into it: InnoDB
// deadlocks (80 to 92 of these 96 adds, without the unit of work's retries), retried by the
// unit of work and a 503 past five attempts. None may deadlock.
func TestFirstAddsOfNewAuthorsDoNotDeadlock(t *testing.T) {
	db := testdb.MySQL(t) // SQLite runs one writer at a time: nothing to deadlock
	store := NewStore(db)
	now := time.Now().UTC()
	const rounds, authors = 4, 24
	deadlocks, added := 0, 0
	for round := range rounds {
		ids := make([]identity.UserID, authors)
		for i := range ids {
			ids[i] = identity.UserID(fmt.Sprintf("01900000-0000-7000-8000-00000%02d%05d", round, i))
			if err := db.Exec(`INSERT INTO users (id, email, password_hash, role, created_at, updated_at) VALUES (?, ?, 'h', 'user', ?, ?)`,
				string(ids[i]), fmt.Sprintf("r%du%d@x.io", round, i), now, now).Error; err != nil {
				t.Fatal(err)
			}
		}
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			start = make(chan struct{})
		)
		for i, author := range ids {
			wg.Go(func() {
				<-start
				err := db.Transaction(func(tx *gorm.DB) error {
					repo := postRepo{db: tx, known: store.known}
					return repo.Add(t.Context(), post.Rehydrate(post.ID(fmt.Sprintf("01900000-0000-7000-9000-00000%02d%05d", round, i)), author, "first", now), 1<<20)
				})
				mu.Lock()
				defer mu.Unlock()
				var me *mysqldriver.MySQLError
				switch {
				case errors.As(err, &me) && me.Number == 1213:
					deadlocks++
				case err != nil:
					t.Errorf("first add of %s: %v", author, err)
				default:
					added++
				}
			})
		}
		close(start)
		wg.Wait()
	}
	if deadlocks > 0 || added != rounds*authors {
		t.Fatalf("%d of %d first adds deadlocked (%d added)", deadlocks, rounds*authors, added)
	}
}
