// Package postsfake holds the posts context's in-memory fakes for use-case tests: its
// repository on a fakes.Store and a post-list cache. The repository passes the posts contract
// suite (test/contract/posts), like the real databases.
package postsfake

import (
	"context"
	"fmt"
	"slices"

	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/posts/post"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/ports/posts"
	"github.com/acme/postsvc/test/fakes"
)

const postsTable = "posts.posts"

func init() {
	// Posts go with their author, as the table's foreign key does.
	fakes.OnIdentityDeleted(func(v *fakes.View, id identity.UserID) {
		deleteAuthor(v, id)
	})
}

func deleteAuthor(v *fakes.View, id identity.UserID) {
	all := postsOf(v)
	for pid, p := range all {
		if p.AuthorID() == id {
			delete(all, pid)
		}
	}
}

// Store implements posts.Store on a fakes.Store.
type Store struct{}

var _ posts.Store = Store{}

// Posts is the post repository on tx.
func (Store) Posts(tx ports.Scope) posts.PostRepository { return repo{tx} }

type repo struct{ tx ports.Scope }

func postsOf(v *fakes.View) map[post.ID]post.Post {
	return fakes.Table[post.ID, post.Post](v, postsTable)
}

func (r repo) Add(_ context.Context, p *post.Post, quota int64) error {
	return fakes.Access(r.tx, true, func(v *fakes.View) error {
		if !fakes.IdentityExists(v, p.AuthorID()) {
			return fmt.Errorf("postsfake: post author %s: %w", p.AuthorID(), identity.ErrUnknownUser)
		}
		all := postsOf(v)
		if _, ok := all[p.ID()]; ok {
			return fmt.Errorf("postsfake: duplicate post id %s", p.ID())
		}
		// The author's total, summed: the fake holds few posts.
		used := int64(len(p.Text()))
		for _, q := range all {
			if q.AuthorID() == p.AuthorID() {
				used += int64(len(q.Text()))
			}
		}
		if used > quota {
			return post.ErrQuotaExceeded
		}
		all[p.ID()] = *p
		return nil
	})
}

func (r repo) ByID(_ context.Context, author identity.UserID, id post.ID) (*post.Post, error) {
	var out *post.Post
	err := fakes.Access(r.tx, false, func(v *fakes.View) error {
		p, ok := postsOf(v)[id]
		if !ok || p.AuthorID() != author {
			return post.ErrNotFound
		}
		out = &p
		return nil
	})
	return out, err
}

func (r repo) Delete(_ context.Context, author identity.UserID, id post.ID) error {
	return fakes.Access(r.tx, true, func(v *fakes.View) error {
		all := postsOf(v)
		p, ok := all[id]
		if !ok || p.AuthorID() != author {
			return post.ErrNotFound
		}
		delete(all, id)
		return nil
	})
}

func (r repo) ListByAuthor(_ context.Context, q posts.PostListQuery) (posts.PostList, error) {
	out := posts.PostList{Posts: []*post.Post{}}
	if q.Limit <= 0 {
		return out, nil
	}
	err := fakes.Access(r.tx, false, func(v *fakes.View) error {
		all := postsOf(v)
		var ids []post.ID
		for id, p := range all {
			if p.AuthorID() == q.Author && (q.Before == "" || id < q.Before) {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		slices.Reverse(ids)
		var used, bound int64
		for _, id := range ids[:min(len(ids), q.Limit)] {
			p := all[id]
			bound += q.Bound(id, int64(len(p.Text())))
		}
		measure := !q.Unmeasured(bound)
		for i, id := range ids {
			p := all[id]
			if i == q.Limit {
				out.More = true
				break
			}
			if measure {
				n := q.SizeOf(&p)
				if !q.Fits(len(out.Posts), used, n) {
					out.More = true
					break
				}
				used += n
			}
			out.Posts = append(out.Posts, &p)
		}
		return nil
	})
	return out, err
}

func (r repo) DeleteByAuthor(_ context.Context, author identity.UserID) error {
	return fakes.Access(r.tx, true, func(v *fakes.View) error {
		deleteAuthor(v, author)
		return nil
	})
}
