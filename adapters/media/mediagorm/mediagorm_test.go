package mediagorm_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/adapters/media/mediagorm"
	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/media/image"
	"github.com/acme/postsvc/ports"
	mediaport "github.com/acme/postsvc/ports/media"
	"github.com/acme/postsvc/test/testdb"
)

// The behaviour of the repository is specified by the contract suite (test/contract/media),
// run on both databases and the fake. These tests check what the contract cannot see: that an
// outage is reported as one by every method, the migration's Down, and that SQLite's queries
// run on the indexes the migration made for them.

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// newUser stores the row of a user that images can belong to. The accounts context's store is
// out of this context's reach (test/arch), so the row is written as its migration defines it.
func newUser(t *testing.T, db *gorm.DB) identity.UserID {
	t.Helper()
	id := identity.UserID(newID(t))
	now := gormstore.DBTime(time.Now())
	err := db.WithContext(t.Context()).Exec("INSERT INTO users (id, email, password_hash, role, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
		string(id), string(id)+"@x.io", "hash", string(identity.RoleUser), now, now).Error
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func newID(t *testing.T) string {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

func newImage(t *testing.T, owner identity.UserID, description string) *image.Image {
	t.Helper()
	sum := sha256.Sum256([]byte(description))
	c := image.Content{Format: image.FormatJPEG, Bytes: 10, Width: 1, Height: 1, SHA256: sum[:]}
	img, err := image.New(image.ID(newID(t)), owner, "a.jpg", c, image.Details{Visibility: image.Public, Description: description, Tags: []string{}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestClosedPoolIsUnavailable closes the pool under the repository: every method must report
// domain.ErrUnavailable, never a business answer such as "not found" or "unknown user".
func TestClosedPoolIsUnavailable(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, db *gorm.DB) {
		owner := newUser(t, db)
		img := newImage(t, owner, "cat")
		uow := gormstore.NewUnitOfWork(db)
		repo := mediagorm.NewStore().Images(uow.Pool())
		if err := repo.Add(t.Context(), []*image.Image{img}); err != nil {
			t.Fatal(err)
		}
		sqlDB, err := db.DB()
		if err != nil {
			t.Fatal(err)
		}
		if err := sqlDB.Close(); err != nil {
			t.Fatal(err)
		}
		q, _ := image.ParseQuery("cat")
		calls := map[string]func(ctx context.Context) error{
			"LockOwner": func(ctx context.Context) error { _, err := repo.LockOwner(ctx, owner); return err },
			"Add":       func(ctx context.Context) error { return repo.Add(ctx, []*image.Image{newImage(t, owner, "dog")}) },
			"Get":       func(ctx context.Context) error { _, err := repo.Get(ctx, img.ID()); return err },
			"Owned": func(ctx context.Context) error {
				_, err := repo.Owned(ctx, owner, []image.ID{img.ID()})
				return err
			},
			"List": func(ctx context.Context) error {
				_, err := repo.List(ctx, mediaport.ListQuery{Owner: owner, Limit: 10})
				return err
			},
			"List searching": func(ctx context.Context) error {
				_, err := repo.List(ctx, mediaport.ListQuery{Search: q, Limit: 10})
				return err
			},
			"Update": func(ctx context.Context) error { return repo.Update(ctx, img) },
			"Delete": func(ctx context.Context) error {
				_, err := repo.Delete(ctx, owner, []image.ID{img.ID()})
				return err
			},
			"DeleteByOwner": func(ctx context.Context) error { return repo.DeleteByOwner(ctx, owner) },
			"MarkThumbnail": func(ctx context.Context) error { return repo.MarkThumbnail(ctx, img.ID()) },
			"Existing": func(ctx context.Context) error {
				_, err := repo.Existing(ctx, []image.ID{img.ID()})
				return err
			},
		}
		for name, call := range calls {
			err := call(t.Context())
			if !errors.Is(err, domain.ErrUnavailable) {
				t.Errorf("%s: got %v, want ErrUnavailable", name, err)
			}
			if errors.Is(err, image.ErrNotFound) || errors.Is(err, identity.ErrUnknownUser) {
				t.Errorf("%s: an outage reads as a business answer: %v", name, err)
			}
		}
	})
}

// TestMigrationDown reverts the media migration: its table (and on SQLite its search index
// and triggers) go, the others stay, and it applies again and works.
func TestMigrationDown(t *testing.T) {
	for _, backend := range testdb.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			ctx := t.Context()
			db := backend.Open(t)
			m := testdb.Migrator(t, db, backend.Name)
			for {
				v, err := m.Version(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if v < 7 {
					t.Fatalf("version %d: migration 7 was not applied", v)
				}
				if v == 7 {
					break
				}
				if err := m.Down(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if err := m.Down(ctx); err != nil {
				t.Fatal(err)
			}
			if db.Migrator().HasTable("images") || db.Migrator().HasTable("images_fts") {
				t.Fatal("media tables left after Down")
			}
			if backend.Name == config.DriverSQLite {
				var left int64
				if err := db.Raw("SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'images%'").Scan(&left).Error; err != nil {
					t.Fatal(err)
				}
				if left != 0 {
					t.Fatalf("%d media objects (tables, indexes, triggers) left after Down", left)
				}
			}
			if !db.Migrator().HasTable("users") {
				t.Fatal("Down of the media migration dropped users")
			}
			if err := m.Up(ctx); err != nil {
				t.Fatal(err)
			}
			// The schema, search included, works after a round trip.
			owner := newUser(t, db)
			repo := mediagorm.NewStore().Images(gormstore.NewUnitOfWork(db).Pool())
			img := newImage(t, owner, "round trip")
			if err := repo.Add(ctx, []*image.Image{img}); err != nil {
				t.Fatal(err)
			}
			q, _ := image.ParseQuery("trip")
			page, err := repo.List(ctx, mediaport.ListQuery{Search: q, Limit: 10})
			if err != nil || len(page.Images) != 1 || page.Images[0].ID() != img.ID() {
				t.Fatalf("search after the round trip: %d images, %v", len(page.Images), err)
			}
		})
	}
}

// TestSQLitePlans checks that SQLite answers the listings from the indexes made for them,
// without sorting, and the quota sum from the owner index alone.
func TestSQLitePlans(t *testing.T) {
	db := testdb.SQLite(t)
	owner := newUser(t, db)
	cases := []struct {
		name, query string
		args        []any
		want        []string
	}{
		{"owner's page", "SELECT * FROM images WHERE owner_id = ? AND id < ? ORDER BY id DESC LIMIT 11",
			[]any{owner, "z"}, []string{"idx_images_owner_id"}},
		{"public page", "SELECT * FROM images WHERE visibility = 'public' AND id < ? ORDER BY id DESC LIMIT 11",
			[]any{"z"}, []string{"idx_images_visibility_id"}},
		{"quota", "SELECT COALESCE(SUM(bytes), 0) FROM images WHERE owner_id = ?",
			[]any{owner}, []string{"COVERING INDEX idx_images_owner_id"}},
		{"search", "SELECT * FROM images WHERE owner_id = ? AND doc_id IN (SELECT rowid FROM images_fts WHERE images_fts MATCH ?) ORDER BY id DESC LIMIT 11",
			[]any{owner, `"w636174"`}, []string{"idx_images_owner_id", "VIRTUAL TABLE INDEX"}},
	}
	for _, c := range cases {
		var plan []struct {
			ID, Parent, Notused int
			Detail              string
		}
		if err := db.Raw("EXPLAIN QUERY PLAN "+c.query, c.args...).Scan(&plan).Error; err != nil {
			t.Fatal(err)
		}
		var details []string
		for _, p := range plan {
			details = append(details, p.Detail)
		}
		text := strings.Join(details, "; ")
		for _, w := range c.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s: plan %q does not use %s", c.name, text, w)
			}
		}
		if strings.Contains(text, "TEMP B-TREE") {
			t.Errorf("%s: plan %q sorts", c.name, text)
		}
	}
}

// TestSearchInTransaction shows where each database's index stands inside a transaction: a
// search there does not see, on MySQL, the rows the transaction added (InnoDB updates its
// FULLTEXT index at commit), while SQLite's triggers update the FTS5 index at once. After the
// commit both find them.
func TestSearchInTransaction(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		owner := newUser(t, db)
		uow := gormstore.NewUnitOfWork(db)
		store := mediagorm.NewStore()
		img := newImage(t, owner, "uncommitted")
		q, _ := image.ParseQuery("uncommitted")
		var inside int
		err := uow.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
			if err := store.Images(tx).Add(ctx, []*image.Image{img}); err != nil {
				return err
			}
			page, err := store.Images(tx).List(ctx, mediaport.ListQuery{Owner: owner, Search: q, Limit: 10})
			inside = len(page.Images)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		want := 1
		if gormstore.IsMySQL(db) {
			want = 0
		}
		if inside != want {
			t.Errorf("search inside the adding transaction found %d, want %d on %s", inside, want, db.Name())
		}
		page, err := store.Images(uow.Pool()).List(ctx, mediaport.ListQuery{Owner: owner, Search: q, Limit: 10})
		if err != nil || len(page.Images) != 1 {
			t.Fatalf("search after commit: %d images, %v", len(page.Images), err)
		}
	})
}
