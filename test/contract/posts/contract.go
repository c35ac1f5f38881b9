// Package posts is the contract of the posts context's repository: run on SQLite, MySQL and
// the in-memory fake, so they all behave the same.
package posts

import (
	"testing"
	"time"

	postsapp "github.com/acme/postsvc/application/posts"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/posts/post"
	"github.com/acme/postsvc/ports"
	port "github.com/acme/postsvc/ports/posts"
	"github.com/acme/postsvc/test/contract"
)

// Backend is one implementation under test: the posts store and the unit of work over the
// same storage, and a way to make the users posts belong to (as the accounts context would:
// the posts context only needs them to exist).
type Backend struct {
	UoW     ports.UnitOfWork
	Store   port.Store
	NewUser func(t *testing.T) identity.UserID
}

// Posts is the post repository on the pool.
func (b Backend) Posts() port.PostRepository { return b.Store.Posts(b.UoW.Pool()) }

func makePost(t testing.TB, author identity.UserID, text string) *post.Post {
	t.Helper()
	p, err := post.New(post.ID(contract.NewID(t)), author, text, time.Now())
	if err != nil {
		t.Fatalf("post.New: %v", err)
	}
	return p
}

func addPost(t *testing.T, b Backend, author identity.UserID, text string) *post.Post {
	t.Helper()
	p := makePost(t, author, text)
	if err := b.Posts().Add(t.Context(), p, postsapp.DefaultQuotaBytes); err != nil {
		t.Fatalf("add post: %v", err)
	}
	return p
}

func postIDs(ps []*post.Post) []post.ID {
	out := make([]post.ID, len(ps))
	for i, p := range ps {
		out[i] = p.ID()
	}
	return out
}

// listPosts returns one page of an author's posts with no byte budget.
func listPosts(t testing.TB, b Backend, author identity.UserID, before post.ID, limit int) []*post.Post {
	t.Helper()
	list, err := b.Posts().ListByAuthor(t.Context(), port.PostListQuery{Author: author, Before: before, Limit: limit})
	contract.NoErr(t, "ListByAuthor", err)
	return list.Posts
}
