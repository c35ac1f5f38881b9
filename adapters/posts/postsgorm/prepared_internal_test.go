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
		if err := store.Posts(uow.Pool()).Add(t.Context(), p); err != nil {
			t.Fatal(err)
		}
	}
	q := posts.PostListQuery{Author: author, Limit: 3, MaxBytes: 1 << 20}
	pooled, err := store.Posts(uow.Pool()).ListByAuthor(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	if gormstore.PreparedFor(db, headsSQL) == nil || gormstore.PreparedFor(db, TextsSQL) == nil {
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
