package ports

import (
	"context"
	"time"

	"github.com/acme/postsvc/domain/post"
	"github.com/acme/postsvc/domain/session"
	"github.com/acme/postsvc/domain/user"
)

// UnitOfWork runs fn with repositories bound to one transaction. It commits when fn returns
// nil and rolls back when fn returns an error or panics, returning that error. Nothing inside
// fn can reach the database outside the transaction, because fn only sees tx. Keep slow work
// (password hashing, token signing, cache writes) outside fn.
type UnitOfWork interface {
	Do(ctx context.Context, fn func(ctx context.Context, tx Repositories) error) error
}

// Repositories is the set of repositories of one scope: bound to a transaction inside
// UnitOfWork.Do, or to the plain connection pool for reads outside one.
type Repositories interface {
	Scope
	Users() UserRepository
	Posts() PostRepository
	Sessions() SessionRepository
}

// UserRepository stores accounts. Every method wraps domain.ErrUnavailable when the database
// cannot be reached.
type UserRepository interface {
	// Add inserts u; user.ErrEmailTaken when the normalised email exists (from the unique
	// index, never from a prior lookup).
	Add(ctx context.Context, u *user.User) error
	// ByID returns user.ErrNotFound when absent.
	ByID(ctx context.Context, id user.ID) (*user.User, error)
	// ByEmail returns user.ErrNotFound when absent.
	ByEmail(ctx context.Context, email user.Email) (*user.User, error)
	// Update saves name, role and updated_at; user.ErrNotFound when absent.
	Update(ctx context.Context, u *user.User) error
	// Delete removes the account row; user.ErrNotFound when absent.
	Delete(ctx context.Context, id user.ID) error
	// Search lists accounts newest first. Query matches a case-insensitive substring of the
	// email or the name, taken literally (no wildcards). Before, when set, starts after that id.
	Search(ctx context.Context, q UserQuery) ([]*user.User, error)
	// CountAdminsForUpdate counts admins and, where the database supports it, locks their rows
	// until the transaction ends, so two concurrent demotions cannot both pass the last-admin
	// check.
	CountAdminsForUpdate(ctx context.Context) (int, error)
	// BumpPostsVersion increments the user's posts version; called in the same transaction as
	// every post write.
	BumpPostsVersion(ctx context.Context, id user.ID) error
}

// UserQuery filters and pages the user directory.
type UserQuery struct {
	Query  string
	Before user.ID
	Limit  int
}

// PostRepository stores posts. Every read and delete is scoped to an author, so one user can
// never reach another's post through it.
type PostRepository interface {
	Add(ctx context.Context, p *post.Post) error
	// ByID returns post.ErrNotFound when absent or owned by someone else.
	ByID(ctx context.Context, author user.ID, id post.ID) (*post.Post, error)
	// Delete returns post.ErrNotFound when absent or owned by someone else.
	Delete(ctx context.Context, author user.ID, id post.ID) error
	// ListByAuthor returns one page of an author's posts, newest (highest id) first, as q
	// describes. It reads the texts of the posts it returns and of no others, so the memory a
	// page takes is bounded by q.MaxBytes (plus one post), not by q.Limit times the largest
	// post.
	ListByAuthor(ctx context.Context, q PostListQuery) (PostList, error)
	// DeleteByAuthor removes every post of author.
	DeleteByAuthor(ctx context.Context, author user.ID) error
}

// PostListQuery asks a PostRepository for one page of an author's posts.
type PostListQuery struct {
	Author user.ID
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
}

// PostList is a page of posts as a repository returns it.
type PostList struct {
	Posts []*post.Post
	// More reports whether the author has posts below the last one in Posts.
	More bool
}

// SessionRepository stores login sessions.
type SessionRepository interface {
	Add(ctx context.Context, s *session.Session) error
	// ByID returns session.ErrNotFound when absent (revoked sessions are still returned).
	ByID(ctx context.Context, id session.ID) (*session.Session, error)
	// Update saves the refresh hash, rotation time and revocation.
	Update(ctx context.Context, s *session.Session) error
	// RevokeAllForUser revokes every active session of a user.
	RevokeAllForUser(ctx context.Context, userID user.ID, now time.Time) error
	// Principal returns the caller behind an active session (not revoked, not expired, user
	// still present) with the user's current role and posts version, in one indexed query:
	// it runs on every authenticated request. session.ErrNotFound otherwise.
	Principal(ctx context.Context, id session.ID, now time.Time) (session.Principal, error)
}

// SizeOf is what p counts against the query's MaxBytes.
func (q PostListQuery) SizeOf(p *post.Post) int64 {
	if q.Size == nil {
		return int64(len(p.Text()))
	}
	return q.Size(p)
}

// Fits reports whether a post that counts n may join a page already holding taken posts that
// count used in all. The first post always fits.
func (q PostListQuery) Fits(taken int, used, n int64) bool {
	return taken == 0 || q.MaxBytes <= 0 || used+n <= q.MaxBytes
}
