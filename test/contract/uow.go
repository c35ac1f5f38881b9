package contract

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	postsapp "github.com/acme/postsvc/application/posts"
	"github.com/acme/postsvc/domain/accounts/session"
	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/posts/post"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/ports/accounts"
	"github.com/acme/postsvc/ports/posts"
)

// errBoom is a failure of the function run in a unit of work, unrelated to storage.
var errBoom = errors.New("boom")

// Backend is the storage under test: the unit of work, and the stores of two contexts whose
// repositories one transaction spans. The unit of work knows neither; that is the point.
type Backend struct {
	UoW      ports.UnitOfWork
	Accounts accounts.Store
	Posts    posts.Store
	Stamps   ports.Stamps
}

// UnitOfWorkTests is the contract of the unit of work.
func UnitOfWorkTests() []Group[Backend] {
	return []Group[Backend]{{Name: "uow", Tests: []Test[Backend]{
		{Name: "commit makes every write visible", Run: testUoWCommit},
		{Name: "an error rolls back every write", Run: testUoWErrorRollsBack},
		{Name: "a panic rolls back every write", Run: testUoWPanicRollsBack},
		{Name: "a repository error rolls back earlier writes", Run: testUoWRepositoryErrorRollsBack},
		{Name: "other contexts' rows do not stop a user's deletion", Run: testUserDeletionCascades},
		{Name: "stamps count each user's bumps and ride on the principal", Run: testStamps},
	}}}
}

// txWrites does, inside one transaction, the writes of a signup followed by a first post, in
// two contexts: a new account and a session (accounts), a post of it and a version bump (posts).
func txWrites(t *testing.T, b Backend, tx ports.Scope, ctx context.Context, u *user.User, p *post.Post, s *session.Session) error {
	t.Helper()
	if err := b.Accounts.Users(tx).Add(ctx, u); err != nil {
		return err
	}
	if err := b.Posts.Posts(tx).Add(ctx, p, postsapp.DefaultQuotaBytes); err != nil {
		return err
	}
	if err := b.Accounts.Sessions(tx).Add(ctx, s); err != nil {
		return err
	}
	// The transaction reads its own writes.
	if _, err := b.Accounts.Users(tx).ByID(ctx, u.ID()); err != nil {
		t.Errorf("ByID inside the transaction: %v", err)
	}
	if _, err := b.Posts.Posts(tx).ByID(ctx, u.ID(), p.ID()); err != nil {
		t.Errorf("post ByID inside the transaction: %v", err)
	}
	return b.Stamps.Bump(ctx, tx, u.ID(), "posts")
}

// fixtures makes an unsaved account with a post and a session.
func fixtures(t *testing.T, email string) (*user.User, *post.Post, *session.Session) {
	t.Helper()
	u := MakeUser(t, email, "In A Transaction", identity.RoleUser)
	p := makePost(t, u.ID(), "written in a transaction")
	s, _, err := session.New(session.ID(NewID(t)), u.ID(), time.Now(), time.Hour)
	NoErr(t, "session.New", err)
	return u, p, s
}

// assertNothingWritten checks that none of the transaction's writes is visible.
func assertNothingWritten(t *testing.T, b Backend, u *user.User, p *post.Post, s *session.Session) {
	t.Helper()
	ctx := t.Context()
	_, err := b.Accounts.Users(b.UoW.Pool()).ByID(ctx, u.ID())
	WantErr(t, "user after rollback", err, user.ErrNotFound)
	_, err = b.Accounts.Users(b.UoW.Pool()).ByEmail(ctx, u.Email())
	WantErr(t, "user by email after rollback", err, user.ErrNotFound)
	_, err = b.Posts.Posts(b.UoW.Pool()).ByID(ctx, u.ID(), p.ID())
	WantErr(t, "post after rollback", err, post.ErrNotFound)

	_, err = b.Accounts.Sessions(b.UoW.Pool()).ByID(ctx, s.ID())
	WantErr(t, "session after rollback", err, session.ErrNotFound)
	// The store still works, and the email was not left reserved.
	addUser(t, b, u.Email().String(), "", identity.RoleUser)
}

func addUser(t *testing.T, b Backend, email, name string, role identity.Role) *user.User {
	t.Helper()
	u := MakeUser(t, email, name, role)
	NoErr(t, "add user", b.Accounts.Users(b.UoW.Pool()).Add(t.Context(), u))
	return u
}

func addPost(t *testing.T, b Backend, author identity.UserID, text string) *post.Post {
	t.Helper()
	p := makePost(t, author, text)
	NoErr(t, "add post", b.Posts.Posts(b.UoW.Pool()).Add(t.Context(), p, postsapp.DefaultQuotaBytes))
	return p
}

func makePost(t testing.TB, author identity.UserID, text string) *post.Post {
	t.Helper()
	p, err := post.New(post.ID(NewID(t)), author, text, time.Now())
	NoErr(t, "post.New", err)
	return p
}

func assertSameUser(t testing.TB, got, want *user.User) {
	t.Helper()
	if got == nil || got.ID() != want.ID() || got.Email() != want.Email() || got.Name() != want.Name() || got.Role() != want.Role() {
		t.Errorf("user = %+v, want %+v", got, want)
	}
}

func testUoWCommit(t *testing.T, b Backend) {
	ctx := t.Context()
	u, p, s := fixtures(t, "commit@x.io")
	err := b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		return txWrites(t, b, tx, ctx, u, p, s)
	})
	NoErr(t, "Do", err)

	got, err := b.Accounts.Users(b.UoW.Pool()).ByID(ctx, u.ID())
	NoErr(t, "ByID after commit", err)
	assertSameUser(t, got, u)
	gotPost, err := b.Posts.Posts(b.UoW.Pool()).ByID(ctx, u.ID(), p.ID())
	NoErr(t, "post ByID after commit", err)
	if gotPost.Text() != p.Text() {
		t.Errorf("post text = %q", gotPost.Text())
	}
	principal, err := b.Accounts.Sessions(b.UoW.Pool()).Principal(ctx, s.ID(), time.Now())
	NoErr(t, "Principal after commit", err)
	if principal.UserID != u.ID() {
		t.Errorf("Principal = %+v, want user %s", principal, u.ID())
	}
	if v := principal.Stamp("posts"); v != 1 {
		t.Errorf("the principal's posts stamp after commit = %d, want 1", v)
	}
}

func testUoWErrorRollsBack(t *testing.T, b Backend) {
	ctx := t.Context()
	u, p, s := fixtures(t, "rollback@x.io")
	err := b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		if err := txWrites(t, b, tx, ctx, u, p, s); err != nil {
			t.Errorf("writes inside the transaction: %v", err)
		}
		return errBoom
	})
	WantErr(t, "Do", err, errBoom)
	assertNothingWritten(t, b, u, p, s)

	// Updates and deletes of existing rows are rolled back too.
	owner := addUser(t, b, "owner@x.io", "Before", identity.RoleUser)
	kept := addPost(t, b, owner.ID(), "kept")
	err = b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		renamed := user.Rehydrate(owner.ID(), owner.Email().String(), owner.PasswordHash(), "After", identity.RoleAdmin, owner.CreatedAt(), time.Now())
		if err := b.Accounts.Users(tx).Update(ctx, renamed); err != nil {
			return err
		}
		if err := b.Posts.Posts(tx).Delete(ctx, owner.ID(), kept.ID()); err != nil {
			return err
		}
		return errBoom
	})
	WantErr(t, "Do", err, errBoom)
	got, err := b.Accounts.Users(b.UoW.Pool()).ByID(ctx, owner.ID())
	NoErr(t, "ByID", err)
	assertSameUser(t, got, owner)
	_, err = b.Posts.Posts(b.UoW.Pool()).ByID(ctx, owner.ID(), kept.ID())
	NoErr(t, "post deleted in a rolled-back transaction", err)
}

func testUoWPanicRollsBack(t *testing.T, b Backend) {
	ctx := t.Context()
	u, p, s := fixtures(t, "panic@x.io")
	recovered := func() (r any) {
		defer func() { r = recover() }()
		_ = b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
			if err := txWrites(t, b, tx, ctx, u, p, s); err != nil {
				t.Errorf("writes inside the transaction: %v", err)
			}
			panic(errBoom)
		})
		return nil
	}()
	if err, ok := recovered.(error); !ok || !errors.Is(err, errBoom) {
		t.Fatalf("Do swallowed or changed the panic: recovered %v", recovered)
	}
	assertNothingWritten(t, b, u, p, s)
}

func testUoWRepositoryErrorRollsBack(t *testing.T, b Backend) {
	ctx := t.Context()
	addUser(t, b, "taken@x.io", "", identity.RoleUser)
	u, p, s := fixtures(t, "fresh@x.io")
	err := b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		if err := txWrites(t, b, tx, ctx, u, p, s); err != nil {
			t.Errorf("writes inside the transaction: %v", err)
		}
		return b.Accounts.Users(tx).Add(ctx, MakeUser(t, "TAKEN@x.io", "", identity.RoleUser))
	})
	WantErr(t, "Do", err, user.ErrEmailTaken)
	assertNothingWritten(t, b, u, p, s)
}

// testUserDeletionCascades deletes an account that has rows in another context: the deletion
// succeeds and takes them along (the foreign keys cascade; the admin use case also deletes
// them itself through every ports.UserDataOwner, so neither depends on the other).
func testUserDeletionCascades(t *testing.T, b Backend) {
	ctx := t.Context()
	u := addUser(t, b, "leaving@x.io", "", identity.RoleUser)
	p := addPost(t, b, u.ID(), "a post")
	NoErr(t, "Bump", b.Stamps.Bump(ctx, b.UoW.Pool(), u.ID(), "posts"))
	NoErr(t, "Delete", b.Accounts.Users(b.UoW.Pool()).Delete(ctx, u.ID()))
	_, err := b.Posts.Posts(b.UoW.Pool()).ByID(ctx, u.ID(), p.ID())
	WantErr(t, "post of a deleted user", err, post.ErrNotFound)
	// A new account under the same id cannot be made (ids are fresh), so the stamps are
	// checked gone through the error of bumping them: the user no longer exists.
	WantErr(t, "Bump of a deleted user", b.Stamps.Bump(ctx, b.UoW.Pool(), u.ID(), "posts"), identity.ErrUnknownUser)
}

// testStamps checks the per-user change counters every cache keys its entries by: 0 before
// any bump, one more per committed bump, nothing from a rolled-back one, none lost to
// concurrency, each user's and each scope's own, and carried by the principal read.
func testStamps(t *testing.T, b Backend) {
	ctx := t.Context()
	u, other := addUser(t, b, "stamped@x.io", "", identity.RoleUser), addUser(t, b, "other@x.io", "", identity.RoleUser)
	sess, _, err := session.New(session.ID(NewID(t)), u.ID(), time.Now(), time.Hour)
	NoErr(t, "session.New", err)
	NoErr(t, "add session", b.Accounts.Sessions(b.UoW.Pool()).Add(ctx, sess))
	stamp := func(scope string) int64 {
		t.Helper()
		p, err := b.Accounts.Sessions(b.UoW.Pool()).Principal(ctx, sess.ID(), time.Now())
		NoErr(t, "Principal", err)
		return p.Stamp(scope)
	}
	if v := stamp("posts"); v != 0 {
		t.Fatalf("stamp of a new user = %d, want 0", v)
	}
	NoErr(t, "Bump", b.Stamps.Bump(ctx, b.UoW.Pool(), u.ID(), "posts"))
	NoErr(t, "Bump", b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		return b.Stamps.Bump(ctx, tx, u.ID(), "posts")
	}))
	NoErr(t, "Bump of another scope", b.Stamps.Bump(ctx, b.UoW.Pool(), u.ID(), "images"))
	if v := stamp("posts"); v != 2 {
		t.Fatalf("stamp after two bumps = %d, want 2", v)
	}
	_ = b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		if err := b.Stamps.Bump(ctx, tx, u.ID(), "posts"); err != nil {
			return err
		}
		return errBoom
	})
	if v := stamp("posts"); v != 2 {
		t.Fatalf("stamp after a rolled-back bump = %d, want 2", v)
	}
	const n = 10
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
				return b.Stamps.Bump(ctx, tx, u.ID(), "posts")
			})
		})
	}
	wg.Wait()
	for _, err := range errs {
		NoErr(t, "concurrent Bump", err)
	}
	if v := stamp("posts"); v != 2+n {
		t.Fatalf("stamp after %d concurrent bumps = %d, want %d", n, v, 2+n)
	}
	if v := stamp("images"); v != 1 {
		t.Fatalf("another scope's stamp = %d, want 1", v)
	}
	otherSess, _, err := session.New(session.ID(NewID(t)), other.ID(), time.Now(), time.Hour)
	NoErr(t, "session.New", err)
	NoErr(t, "add session", b.Accounts.Sessions(b.UoW.Pool()).Add(ctx, otherSess))
	p, err := b.Accounts.Sessions(b.UoW.Pool()).Principal(ctx, otherSess.ID(), time.Now())
	NoErr(t, "Principal", err)
	if p.Stamps != "" {
		t.Fatalf("another user's stamps = %+v, want none", p.Stamps)
	}
	WantErr(t, "Bump of a missing user", b.Stamps.Bump(ctx, b.UoW.Pool(), identity.UserID(NewID(t)), "posts"), identity.ErrUnknownUser)
}
