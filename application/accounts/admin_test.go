package accounts_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/acme/postsvc/application/accounts"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/accounts/session"
	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
	port "github.com/acme/postsvc/ports/accounts"
	"github.com/acme/postsvc/test/fakes"
)

func setup(t *testing.T, owners ...ports.UserDataOwner) (*accounts.Admin, *env, identity.Principal) {
	t.Helper()
	env := newEnv()
	env.Owners = owners
	svc := env.admin()
	root, err := svc.CreateAccount(context.Background(), port.LocalClient,
		port.NewUserInput{Email: "root@x.io", Password: "root password", Role: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	return svc, env, adminPrincipal(root.ID())
}

func TestNonAdminsAreForbidden(t *testing.T) {
	svc, _, _ := setup(t)
	p := identity.Principal{UserID: "u", Role: identity.RoleUser}
	ctx := context.Background()
	if _, err := svc.ListUsers(ctx, p, port.UserListRequest{}); !errors.Is(err, domain.ErrForbidden) {
		t.Error(err)
	}
	if err := svc.DeleteUser(ctx, p, "u"); !errors.Is(err, domain.ErrForbidden) {
		t.Error(err)
	}
}

func TestLastAdminCannotBeDemotedOrDeleted(t *testing.T) {
	svc, _, root := setup(t)
	ctx := context.Background()
	demote := "user"
	if _, err := svc.UpdateUser(ctx, root, string(root.UserID), port.UserUpdate{Role: &demote}); !errors.Is(err, user.ErrLastAdmin) {
		t.Fatalf("demote last admin: %v", err)
	}
	if err := svc.DeleteUser(ctx, root, string(root.UserID)); !errors.Is(err, user.ErrLastAdmin) {
		t.Fatalf("delete last admin: %v", err)
	}
	second, err := svc.CreateUser(ctx, root, port.NewUserInput{Email: "two@x.io", Password: "password two", Role: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.UpdateUser(ctx, root, string(second.ID()), port.UserUpdate{Role: &demote}); err != nil {
		t.Fatalf("demoting one of two admins: %v", err)
	}
}

// owner is a context that keeps users' data: it records what the deletion asked of it, and
// can fail its part of the transaction or of the cleanup.
type owner struct {
	name                string
	failDelete, failOne error
	deleted, cleaned    []identity.UserID
	cleanFailures       int
}

func (o *owner) DeleteUserData(_ context.Context, tx ports.Scope, id identity.UserID) error {
	if o.failDelete != nil {
		return o.failDelete
	}
	// The owner's rows are written in the deleting transaction: on rollback they vanish.
	return fakes.Access(tx, true, func(v *fakes.View) error {
		fakes.Table[identity.UserID, bool](v, "test."+o.name)[id] = true
		o.deleted = append(o.deleted, id)
		return nil
	})
}

func (o *owner) CleanUpUser(_ context.Context, id identity.UserID) error {
	if o.failOne != nil && o.cleanFailures == 0 {
		o.cleanFailures++
		return o.failOne
	}
	o.cleaned = append(o.cleaned, id)
	return nil
}

// TestDeleteUserFansOutToEveryContext deletes a user: every context that keeps users' data
// deletes its rows in the same transaction as the account, its sessions are revoked, and each
// context's cleanup runs from a job after the commit, retried until every one succeeds.
func TestDeleteUserFansOutToEveryContext(t *testing.T) {
	posts, media := &owner{name: "posts"}, &owner{name: "media", failOne: errors.New("storage unreachable")}
	svc, env, root := setup(t, posts, media)
	ctx := context.Background()
	u, err := svc.CreateUser(ctx, root, port.NewUserInput{Email: "a@x.io", Password: "password a"})
	if err != nil || u.Role() != identity.RoleUser {
		t.Fatalf("create: %v", err)
	}
	s, _, _ := session.New("s1", u.ID(), env.Clock.Now(), 3600e9)
	if err := env.sessions().Add(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteUser(ctx, root, string(u.ID())); err != nil {
		t.Fatal(err)
	}
	if _, err := env.sessions().Principal(ctx, "s1", env.Clock.Now()); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("session survived: %v", err)
	}
	for _, o := range []*owner{posts, media} {
		if !slices.Equal(o.deleted, []identity.UserID{u.ID()}) || len(o.cleaned) != 0 {
			t.Errorf("%s: deleted %v, cleaned %v before the job ran", o.name, o.deleted, o.cleaned)
		}
	}
	// The first run fails on media's storage; the job is retried later and then succeeds.
	if _, err := env.RunJobs(ctx, map[string]func(context.Context, ports.Job) error{accounts.UserCleanupJob: svc.CleanUpDeletedUser}); err == nil {
		t.Fatal("the cleanup's failure was not reported")
	}
	env.Clock.Advance(2 * time.Hour)
	env.runCleanups(t, svc)
	for _, o := range []*owner{posts, media} {
		if len(o.cleaned) == 0 || o.cleaned[len(o.cleaned)-1] != u.ID() {
			t.Errorf("%s: cleaned %v", o.name, o.cleaned)
		}
	}
	if err := svc.DeleteUser(ctx, root, string(u.ID())); !errors.Is(err, user.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
}

// TestDeleteUserIsAllOrNothing fails one context's part of the deletion: the account stays,
// with its session, and no cleanup job is left behind.
func TestDeleteUserIsAllOrNothing(t *testing.T) {
	posts := &owner{name: "posts"}
	broken := &owner{name: "media", failDelete: errors.New("media rows locked")}
	svc, env, root := setup(t, posts, broken)
	ctx := context.Background()
	u, err := svc.CreateUser(ctx, root, port.NewUserInput{Email: "a@x.io", Password: "password a"})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteUser(ctx, root, string(u.ID())); err == nil {
		t.Fatal("the deletion succeeded although a context failed its part")
	}
	if _, err := env.users().ByID(ctx, u.ID()); err != nil {
		t.Fatalf("the account is gone after a failed deletion: %v", err)
	}
	if n := env.runCleanups(t, svc); n != 0 || len(posts.cleaned) != 0 {
		t.Fatalf("%d cleanup jobs ran after a rolled-back deletion", n)
	}
	var written bool
	_ = fakes.Access(env.Store.Pool(), false, func(v *fakes.View) error {
		written = fakes.Table[identity.UserID, bool](v, "test.posts")[u.ID()]
		return nil
	})
	if written {
		t.Fatal("a context's part of the rolled-back deletion was kept")
	}
}

// TestBootstrapCreatesTheFirstAdminOnce creates the configured admin when none exists, and
// does nothing once one does, or when the email is taken.
func TestBootstrapCreatesTheFirstAdminOnce(t *testing.T) {
	env := newEnv()
	svc := env.admin()
	ctx := context.Background()
	if _, err := svc.CreateAccount(ctx, port.LocalClient, port.NewUserInput{Email: "taken@x.io", Password: "password!"}); err != nil {
		t.Fatal(err)
	}
	if _, created, err := svc.Bootstrap(ctx, "taken@x.io", "password!"); created || err != nil {
		t.Fatalf("bootstrap over a plain user's email: created %v, %v", created, err)
	}
	u, created, err := svc.Bootstrap(ctx, "root@x.io", "root password")
	if !created || err != nil || u.Role() != identity.RoleAdmin {
		t.Fatalf("first bootstrap: %v, created %v, %v", u, created, err)
	}
	if _, created, err := svc.Bootstrap(ctx, "second@x.io", "root password"); created || err != nil {
		t.Fatalf("bootstrap with an admin present: created %v, %v", created, err)
	}
}

func TestListUsersSearchesLiterallyAndPages(t *testing.T) {
	svc, _, root := setup(t)
	ctx := context.Background()
	for _, e := range []string{"a%b@x.io", "ab@x.io", "under_score@x.io", "under-score@x.io", "o'brien@x.io"} {
		if _, err := svc.CreateUser(ctx, root, port.NewUserInput{Email: e, Password: "password!"}); err != nil {
			t.Fatal(e, err)
		}
	}
	count := func(q string) int {
		page, err := svc.ListUsers(ctx, root, port.UserListRequest{Query: q, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return len(page.Users)
	}
	if n := count("%"); n != 1 {
		t.Errorf("%%: %d", n)
	}
	if n := count("_"); n != 1 {
		t.Errorf("_: %d", n)
	}
	if n := count("'"); n != 1 {
		t.Errorf("quote: %d", n)
	}
	if n := count("UNDER"); n != 2 {
		t.Errorf("case-insensitive: %d", n)
	}
	if n := count(""); n != 6 {
		t.Errorf("all: %d", n)
	}
	first, err := svc.ListUsers(ctx, root, port.UserListRequest{Limit: 4})
	if err != nil || len(first.Users) != 4 || first.NextCursor == "" {
		t.Fatalf("page 1: %v", err)
	}
	second, err := svc.ListUsers(ctx, root, port.UserListRequest{Limit: 4, Cursor: first.NextCursor})
	if err != nil || len(second.Users) != 2 || second.NextCursor != "" {
		t.Fatalf("page 2: %d users, %q, %v", len(second.Users), second.NextCursor, err)
	}
}

// TestCreateUserHashesInTheAdminsShare: an admin creating accounts competes for the hasher
// like any other client address, and the command line's accounts are hashed as the local
// client, so neither can take the slots other clients are owed.
func TestCreateUserHashesInTheAdminsShare(t *testing.T) {
	svc, env, root := setup(t)
	if _, err := svc.CreateUser(context.Background(), root, port.NewUserInput{Email: "a@x.io", Password: "password a", ClientAddr: "203.0.113.5"}); err != nil {
		t.Fatal(err)
	}
	got := env.Hasher.Clients()
	if want := []port.ClientKey{port.LocalClient, "203.0.113.5"}; !slices.Equal(got, want) {
		t.Fatalf("hashed for %q, want %q", got, want)
	}
	// A hasher that sheds the work is reported as it is, and nothing is stored.
	env.Hasher.Err = fmt.Errorf("test: %w", domain.ErrOverloaded)
	if _, err := svc.CreateUser(context.Background(), root, port.NewUserInput{Email: "b@x.io", Password: "password b", ClientAddr: "203.0.113.5"}); !errors.Is(err, domain.ErrOverloaded) {
		t.Fatalf("shed hash: got %v, want ErrOverloaded", err)
	}
	if _, err := env.users().ByEmail(context.Background(), mustEmail(t, "b@x.io")); !errors.Is(err, user.ErrNotFound) {
		t.Fatalf("an account was stored without a hash: %v", err)
	}
}

func mustEmail(t *testing.T, s string) user.Email {
	t.Helper()
	e, err := user.ParseEmail(s)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
