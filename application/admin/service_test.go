package admin_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/acme/postsvc/application/admin"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/post"
	"github.com/acme/postsvc/domain/session"
	"github.com/acme/postsvc/domain/user"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/test/fakes"
)

func setup(t *testing.T) (*admin.Service, *fakes.Env, session.Principal) {
	t.Helper()
	env := fakes.NewEnv()
	svc := admin.NewService(env.UoW, env.Store, env.Hasher, env.Cache, env.Clock, env.IDs)
	root, err := admin.CreateAccount(context.Background(), env.UoW, env.Hasher, env.Clock, env.IDs, ports.LocalClient,
		ports.NewUserInput{Email: "root@x.io", Password: "root password", Role: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	return svc, env, session.Principal{UserID: root.ID(), Role: user.RoleAdmin}
}

func TestNonAdminsAreForbidden(t *testing.T) {
	svc, _, _ := setup(t)
	p := session.Principal{UserID: "u", Role: user.RoleUser}
	ctx := context.Background()
	if _, err := svc.ListUsers(ctx, p, ports.UserListRequest{}); !errors.Is(err, domain.ErrForbidden) {
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
	if _, err := svc.UpdateUser(ctx, root, string(root.UserID), ports.UserUpdate{Role: &demote}); !errors.Is(err, user.ErrLastAdmin) {
		t.Fatalf("demote last admin: %v", err)
	}
	if err := svc.DeleteUser(ctx, root, string(root.UserID)); !errors.Is(err, user.ErrLastAdmin) {
		t.Fatalf("delete last admin: %v", err)
	}
	second, err := svc.CreateUser(ctx, root, ports.NewUserInput{Email: "two@x.io", Password: "password two", Role: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.UpdateUser(ctx, root, string(second.ID()), ports.UserUpdate{Role: &demote}); err != nil {
		t.Fatalf("demoting one of two admins: %v", err)
	}
}

func TestDeleteUserTakesPostsAndSessionsAndForgetsCache(t *testing.T) {
	svc, env, root := setup(t)
	ctx := context.Background()
	u, err := svc.CreateUser(ctx, root, ports.NewUserInput{Email: "a@x.io", Password: "password a"})
	if err != nil || u.Role() != user.RoleUser {
		t.Fatalf("create: %v", err)
	}
	p, _ := post.New("p1", u.ID(), "text", env.Clock.Now())
	if err := env.Store.Posts().Add(ctx, p); err != nil {
		t.Fatal(err)
	}
	s, _, _ := session.New("s1", u.ID(), env.Clock.Now(), 3600e9)
	if err := env.Store.Sessions().Add(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteUser(ctx, root, string(u.ID())); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Store.Posts().ByID(ctx, u.ID(), "p1"); !errors.Is(err, post.ErrNotFound) {
		t.Errorf("post survived: %v", err)
	}
	if _, err := env.Store.Sessions().Principal(ctx, "s1", env.Clock.Now()); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("session survived: %v", err)
	}
	if len(env.Cache.Forgotten) != 1 || env.Cache.Forgotten[0] != u.ID() {
		t.Errorf("cache not told: %v", env.Cache.Forgotten)
	}
	if err := svc.DeleteUser(ctx, root, string(u.ID())); !errors.Is(err, user.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
}

func TestListUsersSearchesLiterallyAndPages(t *testing.T) {
	svc, _, root := setup(t)
	ctx := context.Background()
	for _, e := range []string{"a%b@x.io", "ab@x.io", "under_score@x.io", "under-score@x.io", "o'brien@x.io"} {
		if _, err := svc.CreateUser(ctx, root, ports.NewUserInput{Email: e, Password: "password!"}); err != nil {
			t.Fatal(e, err)
		}
	}
	count := func(q string) int {
		page, err := svc.ListUsers(ctx, root, ports.UserListRequest{Query: q, Limit: 100})
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
	first, err := svc.ListUsers(ctx, root, ports.UserListRequest{Limit: 4})
	if err != nil || len(first.Users) != 4 || first.NextCursor == "" {
		t.Fatalf("page 1: %v", err)
	}
	second, err := svc.ListUsers(ctx, root, ports.UserListRequest{Limit: 4, Cursor: first.NextCursor})
	if err != nil || len(second.Users) != 2 || second.NextCursor != "" {
		t.Fatalf("page 2: %d users, %q, %v", len(second.Users), second.NextCursor, err)
	}
}

// TestCreateUserHashesInTheAdminsShare: an admin creating accounts competes for the hasher
// like any other client address, and the command line's accounts are hashed as the local
// client, so neither can take the slots other clients are owed.
func TestCreateUserHashesInTheAdminsShare(t *testing.T) {
	svc, env, root := setup(t)
	if _, err := svc.CreateUser(context.Background(), root, ports.NewUserInput{Email: "a@x.io", Password: "password a", ClientAddr: "203.0.113.5"}); err != nil {
		t.Fatal(err)
	}
	got := env.Hasher.Clients()
	if want := []ports.ClientKey{ports.LocalClient, "203.0.113.5"}; !slices.Equal(got, want) {
		t.Fatalf("hashed for %q, want %q", got, want)
	}
	// A hasher that sheds the work is reported as it is, and nothing is stored.
	env.Hasher.Err = fmt.Errorf("test: %w", domain.ErrOverloaded)
	if _, err := svc.CreateUser(context.Background(), root, ports.NewUserInput{Email: "b@x.io", Password: "password b", ClientAddr: "203.0.113.5"}); !errors.Is(err, domain.ErrOverloaded) {
		t.Fatalf("shed hash: got %v, want ErrOverloaded", err)
	}
	if _, err := env.Store.Users().ByEmail(context.Background(), mustEmail(t, "b@x.io")); !errors.Is(err, user.ErrNotFound) {
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
