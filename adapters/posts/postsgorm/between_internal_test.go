package postsgorm

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/posts/post"
	"github.com/acme/postsvc/ports/posts"
	"github.com/acme/postsvc/test/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// TestListKeepsItsPostsWhenOthersAreWrittenBetweenItsSteps writes and deletes posts between
// the list's two statements, as concurrent writers of the author do. Post ids are made before
// the writing transaction waits for the author's lock, so posts commit out of id order and
// one committed in between can fall inside the kept range. The page must hold every post the
// first step kept and that still exists: before, the second step's LIMIT let such posts take
// kept ones' places, so a post the author had been answered for fell off its very next list
// (a first page of limit=100 with two posts and a next_cursor, seen on MariaDB under 64
// concurrent adds and lists).
func TestListKeepsItsPostsWhenOthersAreWrittenBetweenItsSteps(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, db *gorm.DB) {
		const author = identity.UserID("01900000-0000-7000-8000-0000000000ac")
		now := time.Now().UTC()
		if err := db.Exec(`INSERT INTO users (id, email, password_hash, role, created_at, updated_at) VALUES (?, 'c@x.io', 'h', 'user', ?, ?)`,
			string(author), now, now).Error; err != nil {
			t.Fatal(err)
		}
		pool := gormstore.NewUnitOfWork(db).Pool()
		repo := NewStore(db).Posts(pool)
		id := func(n int) post.ID { return post.ID(fmt.Sprintf("01900000-0000-7000-8000-%012d", 300+n)) }
		add := func(t *testing.T, n int) {
			t.Helper()
			if err := repo.Add(context.WithoutCancel(t.Context()), post.Rehydrate(id(n), author, "text", now), 1<<30); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []struct {
			name    string
			posts   []int // before the list
			limit   int
			between func(t *testing.T)
			want    []int
			more    bool
		}{
			{"one written inside the range", []int{10, 20, 30}, 100, func(t *testing.T) { add(t, 25) }, []int{30, 20, 10}, false},
			{"more written inside the range than the page holds", []int{10, 20, 30}, 100,
				func(t *testing.T) { add(t, 21); add(t, 22); add(t, 23); add(t, 24); add(t, 11) }, []int{30, 20, 10}, false},
			{"written inside a page that is not the last", []int{10, 20, 30, 40}, 2, func(t *testing.T) { add(t, 35) }, []int{40, 30}, true},
			{"written above the range", []int{10, 20}, 100, func(t *testing.T) { add(t, 50) }, []int{20, 10}, false},
			{"kept one deleted, another written", []int{10, 20, 30}, 100, func(t *testing.T) {
				if err := repo.Delete(t.Context(), author, id(20)); err != nil {
					t.Fatal(err)
				}
				add(t, 15)
			}, []int{30, 10}, false},
		} {
			t.Run(c.name, func(t *testing.T) {
				if err := repo.DeleteByAuthor(t.Context(), author); err != nil {
					t.Fatal(err)
				}
				for _, n := range c.posts {
					add(t, n)
				}
				r := postRepo{db: db, betweenSteps: func(context.Context) { c.between(t) }}
				got, err := r.ListByAuthor(t.Context(), posts.PostListQuery{Author: author, Limit: c.limit, MaxBytes: 1 << 20})
				if err != nil {
					t.Fatal(err)
				}
				var want, have []post.ID
				for _, n := range c.want {
					want = append(want, id(n))
				}
				for _, p := range got.Posts {
					have = append(have, p.ID())
				}
				if !slices.Equal(have, want) || got.More != c.more {
					t.Fatalf("page %v (more %v), want %v (more %v)", have, got.More, want, c.more)
				}
			})
		}
	})
}
