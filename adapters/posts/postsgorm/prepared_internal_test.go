package postsgorm

import (
	"context"
	"testing"
	"time"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/posts/post"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/ports/posts"
	"github.com/acme/postsvc/test/testdb"
)

// TestListRunsPreparedOnThePool checks that the pool's list runs through the statements
// prepared once, and that a transaction's repository reads the same page.
func TestListRunsPreparedOnThePool(t *testing.T) {
	db := testdb.SQLite(t)
	const author = identity.UserID("01900000-0000-7000-8000-0000000000aa")
	if err := db.Exec(`INSERT INTO users (id, email, password_hash, role, created_at, updated_at) VALUES (?, 'a@x.io', 'h', 'user', ?, ?)`,
		string(author), time.Now().UTC(), time.Now().UTC()).Error; err != nil {
		t.Fatal(err)
	}
	store := NewStore(db)
	uow := gormstore.NewUnitOfWork(db)
	for i := range 5 {
		p := post.Rehydrate(post.ID("01900000-0000-7000-8000-00000000010"+string(rune('0'+i))), author, "text", time.Now().UTC())
		if err := store.Posts(uow.Pool()).Add(t.Context(), p, 1<<30); err != nil {
			t.Fatal(err)
		}
	}
	q := posts.PostListQuery{Author: author, Limit: 3, MaxBytes: 1 << 20}
	pooled, err := store.Posts(uow.Pool()).ListByAuthor(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	if gormstore.PreparedFor(db, headsSQL) == nil || gormstore.PreparedFor(db, textsSQL) == nil {
		t.Fatal("the pool's list ran unprepared")
	}
	var inTx posts.PostList
	err = uow.Do(t.Context(), func(ctx context.Context, tx ports.Scope) error {
		inTx, err = store.Posts(tx).ListByAuthor(ctx, q)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pooled.Posts) != 3 || !pooled.More || len(inTx.Posts) != 3 || !inTx.More {
		t.Fatalf("pool read %d posts (more %v), transaction %d (more %v); want 3 and more each", len(pooled.Posts), pooled.More, len(inTx.Posts), inTx.More)
	}
	for i := range pooled.Posts {
		if pooled.Posts[i].ID() != inTx.Posts[i].ID() {
			t.Fatalf("post %d: pool %s, transaction %s", i, pooled.Posts[i].ID(), inTx.Posts[i].ID())
		}
	}
}

// TestSQLiteHandsTheListTimestampOverAsText guards what textsSQL is for: selected as
// +created_at, the timestamp reaches gormstore.Timestamp as the stored text, not parsed by the
// driver (see gormstore.Timestamp); selected plainly, the driver parses it.
func TestSQLiteHandsTheListTimestampOverAsText(t *testing.T) {
	db := testdb.SQLite(t)
	const author = identity.UserID("01900000-0000-7000-8000-0000000000ab")
	now := time.Now().UTC()
	if err := db.Exec(`INSERT INTO users (id, email, password_hash, role, created_at, updated_at) VALUES (?, 'b@x.io', 'h', 'user', ?, ?)`,
		string(author), now, now).Error; err != nil {
		t.Fatal(err)
	}
	const id = "01900000-0000-7000-8000-000000000201"
	created := gormstore.DBTime(now)
	if err := NewStore(db).Posts(gormstore.NewUnitOfWork(db).Pool()).Add(t.Context(), post.Rehydrate(id, author, "text", created), 1<<30); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		query    string
		wantText bool
	}{{textsSQL, true}, {TextsSQL, false}} {
		var (
			gotID, text string
			stamp       any
		)
		if err := db.Raw(c.query, string(author), id, id, 1).Row().Scan(&gotID, &text, &stamp); err != nil {
			t.Fatal(err)
		}
		if _, isText := stamp.(string); isText != c.wantText {
			t.Errorf("%s: created_at arrives as %T, want text %v", c.query, stamp, c.wantText)
		}
		var ts gormstore.Timestamp
		if err := ts.Scan(stamp); err != nil || !ts.T.Equal(created) {
			t.Errorf("%s: created_at %v (%v), want %v", c.query, ts.T, err, created)
		}
	}
}
