package contract

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/acme/postsvc/domain/post"
	"github.com/acme/postsvc/domain/session"
	"github.com/acme/postsvc/domain/user"
	"github.com/acme/postsvc/ports"
)

// errBoom is a failure of the function run in a unit of work, unrelated to storage.
var errBoom = errors.New("boom")

func unitOfWorkTests() []namedTest {
	return []namedTest{
		{"commit makes every write visible", testUoWCommit},
		{"an error rolls back every write", testUoWErrorRollsBack},
		{"a panic rolls back every write", testUoWPanicRollsBack},
		{"a repository error rolls back earlier writes", testUoWRepositoryErrorRollsBack},
	}
}

// txWrites does, inside one transaction, the writes of a signup followed by a first post:
// a new account, a post of it, a session, and a posts-version bump.
func txWrites(t *testing.T, tx ports.Repositories, ctx context.Context, u *user.User, p *post.Post, s *session.Session) error {
	t.Helper()
	if err := tx.Users().Add(ctx, u); err != nil {
		return err
	}
	if err := tx.Posts().Add(ctx, p); err != nil {
		return err
	}
	if err := tx.Sessions().Add(ctx, s); err != nil {
		return err
	}
	// The transaction reads its own writes.
	if _, err := tx.Users().ByID(ctx, u.ID()); err != nil {
		t.Errorf("ByID inside the transaction: %v", err)
	}
	if _, err := tx.Posts().ByID(ctx, u.ID(), p.ID()); err != nil {
		t.Errorf("post ByID inside the transaction: %v", err)
	}
	return tx.Users().BumpPostsVersion(ctx, u.ID())
}

// fixtures makes an unsaved account with a post and a session.
func fixtures(t *testing.T, email string) (*user.User, *post.Post, *session.Session) {
	t.Helper()
	u := makeUser(t, email, "In A Transaction", user.RoleUser)
	p := makePost(t, u.ID(), "written in a transaction")
	s, _, err := session.New(session.ID(newID(t)), u.ID(), time.Now(), time.Hour)
	noErr(t, "session.New", err)
	return u, p, s
}

// assertNothingWritten checks that none of the transaction's writes is visible.
func assertNothingWritten(t *testing.T, b Backend, u *user.User, p *post.Post, s *session.Session) {
	t.Helper()
	ctx := t.Context()
	_, err := b.Repos.Users().ByID(ctx, u.ID())
	wantErr(t, "user after rollback", err, user.ErrNotFound)
	_, err = b.Repos.Users().ByEmail(ctx, u.Email())
	wantErr(t, "user by email after rollback", err, user.ErrNotFound)
	_, err = b.Repos.Posts().ByID(ctx, u.ID(), p.ID())
	wantErr(t, "post after rollback", err, post.ErrNotFound)
	list := listPosts(t, b, u.ID(), "", 10)
	if len(list) != 0 {
		t.Errorf("%d posts visible after rollback", len(list))
	}
	_, err = b.Repos.Sessions().ByID(ctx, s.ID())
	wantErr(t, "session after rollback", err, session.ErrNotFound)
	// The store still works, and the email was not left reserved.
	addUser(t, b, u.Email().String(), "", user.RoleUser)
}

func testUoWCommit(t *testing.T, b Backend) {
	ctx := t.Context()
	u, p, s := fixtures(t, "commit@x.io")
	err := b.UoW.Do(ctx, func(ctx context.Context, tx ports.Repositories) error {
		return txWrites(t, tx, ctx, u, p, s)
	})
	noErr(t, "Do", err)

	got, err := b.Repos.Users().ByID(ctx, u.ID())
	noErr(t, "ByID after commit", err)
	assertSameUser(t, got, u)
	gotPost, err := b.Repos.Posts().ByID(ctx, u.ID(), p.ID())
	noErr(t, "post ByID after commit", err)
	if gotPost.Text() != p.Text() {
		t.Errorf("post text = %q", gotPost.Text())
	}
	principal, err := b.Repos.Sessions().Principal(ctx, s.ID(), time.Now())
	noErr(t, "Principal after commit", err)
	if principal.UserID != u.ID() || principal.PostsVersion != 1 {
		t.Errorf("Principal = %+v, want user %s with posts version 1", principal, u.ID())
	}
}

func testUoWErrorRollsBack(t *testing.T, b Backend) {
	ctx := t.Context()
	u, p, s := fixtures(t, "rollback@x.io")
	err := b.UoW.Do(ctx, func(ctx context.Context, tx ports.Repositories) error {
		if err := txWrites(t, tx, ctx, u, p, s); err != nil {
			t.Errorf("writes inside the transaction: %v", err)
		}
		return errBoom
	})
	wantErr(t, "Do", err, errBoom)
	assertNothingWritten(t, b, u, p, s)

	// Updates and deletes of existing rows are rolled back too.
	owner := addUser(t, b, "owner@x.io", "Before", user.RoleUser)
	kept := addPost(t, b, owner.ID(), "kept")
	err = b.UoW.Do(ctx, func(ctx context.Context, tx ports.Repositories) error {
		renamed := user.Rehydrate(owner.ID(), owner.Email().String(), owner.PasswordHash(), "After", user.RoleAdmin, owner.CreatedAt(), time.Now())
		if err := tx.Users().Update(ctx, renamed); err != nil {
			return err
		}
		if err := tx.Posts().Delete(ctx, owner.ID(), kept.ID()); err != nil {
			return err
		}
		return errBoom
	})
	wantErr(t, "Do", err, errBoom)
	got, err := b.Repos.Users().ByID(ctx, owner.ID())
	noErr(t, "ByID", err)
	assertSameUser(t, got, owner)
	_, err = b.Repos.Posts().ByID(ctx, owner.ID(), kept.ID())
	noErr(t, "post deleted in a rolled-back transaction", err)
}

func testUoWPanicRollsBack(t *testing.T, b Backend) {
	ctx := t.Context()
	u, p, s := fixtures(t, "panic@x.io")
	recovered := func() (r any) {
		defer func() { r = recover() }()
		_ = b.UoW.Do(ctx, func(ctx context.Context, tx ports.Repositories) error {
			if err := txWrites(t, tx, ctx, u, p, s); err != nil {
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
	addUser(t, b, "taken@x.io", "", user.RoleUser)
	u, p, s := fixtures(t, "fresh@x.io")
	err := b.UoW.Do(ctx, func(ctx context.Context, tx ports.Repositories) error {
		if err := txWrites(t, tx, ctx, u, p, s); err != nil {
			t.Errorf("writes inside the transaction: %v", err)
		}
		return tx.Users().Add(ctx, makeUser(t, "TAKEN@x.io", "", user.RoleUser))
	})
	wantErr(t, "Do", err, user.ErrEmailTaken)
	assertNothingWritten(t, b, u, p, s)
}
