// Package posts declares the posts context's ports: its repository and list cache, which the
// use case needs, and the service it offers to the HTTP module.
package posts

import (
	"context"

	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/posts/post"
	"github.com/acme/postsvc/ports"
)

// Store builds the posts repository on a storage scope: the transaction of a unit of work, or
// the pool (ports.UnitOfWork.Pool).
type Store interface {
	Posts(tx ports.Scope) PostRepository
}

// PostRepository stores posts. Every read and delete is scoped to an author, so one user can
// never reach another's post through it. Every method wraps domain.ErrUnavailable when the
// database cannot be reached.
type PostRepository interface {
	// Add inserts p when the author's stored texts and p's text together stay within quota
	// bytes, and post.ErrQuotaExceeded, storing nothing, when they would not;
	// identity.ErrUnknownUser when its author does not exist. Concurrent adds of one author
	// never pass the quota together. Run it in a transaction: the count and the insert are
	// two writes, and a rollback undoes both.
	Add(ctx context.Context, p *post.Post, quota int64) error
	// ByID returns post.ErrNotFound when absent or owned by someone else.
	ByID(ctx context.Context, author identity.UserID, id post.ID) (*post.Post, error)
	// Delete returns post.ErrNotFound when absent or owned by someone else.
	Delete(ctx context.Context, author identity.UserID, id post.ID) error
	// ListByAuthor returns one page of an author's posts, newest (highest id) first, as q
	// describes. It reads the texts of the posts it returns and of no others, so the memory a
	// page takes is bounded by q.MaxBytes (plus one post), not by q.Limit times the largest
	// post.
	ListByAuthor(ctx context.Context, q PostListQuery) (PostList, error)
	// DeleteByAuthor removes every post of author.
	DeleteByAuthor(ctx context.Context, author identity.UserID) error
}

// PostListQuery asks a PostRepository for one page of an author's posts.
type PostListQuery struct {
	Author identity.UserID
	// Before, when not empty, starts the page below that id (the position a cursor names).
	Before post.ID
	// Limit is the most posts the page holds; it must be positive.
	Limit int
	// MaxBytes, when positive, ends the page early: posts are taken newest first while the
	// sum of their Size stays within MaxBytes, and the first post is taken whatever its size,
	// so a page is never empty while posts remain.
	MaxBytes int64
	// Size is what one post counts against MaxBytes. It must never be less than the length of
	// the post's text in bytes: that is what lets a repository leave out, before reading them,
	// the texts that cannot fit. Nil counts the text's length.
	Size func(*post.Post) int64
	// MaxSize, when set, is an upper bound of Size for any post with that id and a text of
	// that many bytes. When the bounds of the posts a page keeps fit MaxBytes together, a
	// repository may take them without calling Size, which walks every text.
	MaxSize func(id post.ID, textBytes int64) int64
}

// PostList is a page of posts as a repository returns it.
type PostList struct {
	Posts []*post.Post
	// More reports whether the author has posts below the last one in Posts.
	More bool
}

// SizeOf is what p counts against the query's MaxBytes.
func (q PostListQuery) SizeOf(p *post.Post) int64 {
	if q.Size == nil {
		return int64(len(p.Text()))
	}
	return q.Size(p)
}

// Unmeasured reports whether a page of posts whose MaxSize bounds add up to bound fits
// MaxBytes whatever the texts hold, so that none of them needs Size: when MaxBytes is not
// positive, or MaxSize is set and bound is within MaxBytes.
func (q PostListQuery) Unmeasured(bound int64) bool {
	return q.MaxBytes <= 0 || (q.MaxSize != nil && bound <= q.MaxBytes)
}

// Bound is MaxSize for a post with that id and a text of that many bytes; zero without
// MaxSize (Unmeasured then holds only when MaxBytes is not positive).
func (q PostListQuery) Bound(id post.ID, textBytes int64) int64 {
	if q.MaxSize == nil {
		return 0
	}
	return q.MaxSize(id, textBytes)
}

// Fits reports whether a post that counts n may join a page already holding taken posts that
// count used in all. The first post always fits.
func (q PostListQuery) Fits(taken int, used, n int64) bool {
	return taken == 0 || q.MaxBytes <= 0 || used+n <= q.MaxBytes
}
