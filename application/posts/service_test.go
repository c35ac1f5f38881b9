package posts_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/acme/postsvc/application/posts"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/posts/post"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/test/fakes"
	"github.com/acme/postsvc/test/fakes/postsfake"
)

type fixture struct {
	svc   *posts.Service
	env   *fakes.Env
	cache *postsfake.Cache
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, posts.Settings{})
}

func newFixtureWith(t *testing.T, settings posts.Settings) *fixture {
	t.Helper()
	env := fakes.NewEnv()
	cache := postsfake.NewCache()
	return &fixture{svc: posts.NewService(env.Store, postsfake.Store{}, fakes.Stamps{}, cache, env.Clock, env.IDs, settings), env: env, cache: cache}
}

// principal makes a user and returns its principal, as authentication would.
func (f *fixture) principal(t *testing.T, _ string, role identity.Role) identity.Principal {
	t.Helper()
	return identity.Principal{UserID: f.env.NewUser(), Role: role}
}

// refresh is the principal of the caller's next request: its stamps read again, as every
// request's authentication reads them.
func (f *fixture) refresh(t *testing.T, p identity.Principal) identity.Principal {
	t.Helper()
	err := fakes.Access(f.env.Store.Pool(), false, func(v *fakes.View) error {
		p.Stamps = fakes.StampsOf(v, p.UserID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAdminsHoldNoContent(t *testing.T) {
	f := newFixture(t)
	admin := f.principal(t, "root@x.io", identity.RoleAdmin)
	ctx := context.Background()
	if _, err := f.svc.Add(ctx, admin, "hi"); !errors.Is(err, domain.ErrForbidden) {
		t.Errorf("add: %v", err)
	}
	if _, _, err := f.svc.List(ctx, admin, ports.PageRequest{}); !errors.Is(err, domain.ErrForbidden) {
		t.Errorf("list: %v", err)
	}
	if _, err := f.svc.Get(ctx, admin, "1"); !errors.Is(err, domain.ErrForbidden) {
		t.Errorf("get: %v", err)
	}
	if err := f.svc.Delete(ctx, admin, "1"); !errors.Is(err, domain.ErrForbidden) {
		t.Errorf("delete: %v", err)
	}
}

func TestOtherUsersPostsAreNotFound(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	alice := f.principal(t, "alice@x.io", identity.RoleUser)
	bob := f.principal(t, "bob@x.io", identity.RoleUser)
	p, err := f.svc.Add(ctx, alice, "alice's")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Get(ctx, bob, string(p.ID())); !errors.Is(err, post.ErrNotFound) {
		t.Errorf("bob reads alice's post: %v", err)
	}
	if err := f.svc.Delete(ctx, bob, string(p.ID())); !errors.Is(err, post.ErrNotFound) {
		t.Errorf("bob deletes alice's post: %v", err)
	}
	if got, err := f.svc.Get(ctx, alice, string(p.ID())); err != nil || got.Text() != "alice's" {
		t.Errorf("alice's post must survive: %v", err)
	}
	if _, err := f.svc.Get(ctx, alice, "../../etc"); !errors.Is(err, post.ErrNotFound) {
		t.Errorf("garbage id: %v", err)
	}
}

func TestTextRules(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	alice := f.principal(t, "alice@x.io", identity.RoleUser)
	var ve *domain.ValidationError
	if _, err := f.svc.Add(ctx, alice, ""); !errors.As(err, &ve) {
		t.Errorf("empty: %v", err)
	}
	if _, err := f.svc.Add(ctx, alice, strings.Repeat("a", post.MaxTextBytes+1)); !errors.Is(err, post.ErrTextTooLarge) {
		t.Errorf("too large: %v", err)
	}
	big := strings.Repeat("😀", post.MaxTextBytes/4)
	p, err := f.svc.Add(ctx, alice, big)
	if err != nil || p.Text() != big {
		t.Fatalf("1 MiB: %v", err)
	}
}

func TestListReadsYourWritesThroughTheCache(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	alice := f.principal(t, "alice@x.io", identity.RoleUser)
	if _, err := f.svc.Add(ctx, alice, "one"); err != nil {
		t.Fatal(err)
	}
	alice = f.refresh(t, alice)
	page, hit, err := f.svc.List(ctx, alice, ports.PageRequest{})
	if err != nil || hit || len(page.Posts) != 1 {
		t.Fatalf("first list: %d posts, hit=%v, %v", len(page.Posts), hit, err)
	}
	if _, hit, _ = f.svc.List(ctx, alice, ports.PageRequest{}); !hit {
		t.Fatal("second identical list must hit the cache")
	}
	if _, err := f.svc.Add(ctx, alice, "two"); err != nil {
		t.Fatal(err)
	}
	if n := len(f.cache.Forgotten); n != 2 || f.cache.Forgotten[n-1] != alice.UserID {
		t.Fatalf("cache must be told after each committed write: %v", f.cache.Forgotten)
	}
	alice = f.refresh(t, alice)
	page, hit, err = f.svc.List(ctx, alice, ports.PageRequest{})
	if err != nil || hit || len(page.Posts) != 2 || page.Posts[0].Text() != "two" {
		t.Fatalf("after a write the next list must be fresh and newest first: hit=%v %v", hit, err)
	}
}

func TestFailedWriteLeavesCacheAndStoreAlone(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	alice := f.principal(t, "alice@x.io", identity.RoleUser)
	f.env.Store.FailNext(domain.ErrUnavailable)
	if _, err := f.svc.Add(ctx, alice, "lost?"); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("got %v", err)
	}
	if len(f.cache.Forgotten) != 0 {
		t.Fatal("the cache must not be touched when the transaction did not commit")
	}
	page, _, err := f.svc.List(ctx, f.refresh(t, alice), ports.PageRequest{})
	if err != nil || len(page.Posts) != 0 {
		t.Fatalf("nothing may be half-written: %d posts, %v", len(page.Posts), err)
	}
}

func TestCursorPagingVisitsEveryPostOnceWhilePostsAreAdded(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	alice := f.principal(t, "alice@x.io", identity.RoleUser)
	for i := range 25 {
		if _, err := f.svc.Add(ctx, alice, fmt.Sprint("post ", i)); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[post.ID]int{}
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		page, _, err := f.svc.List(ctx, f.refresh(t, alice), ports.PageRequest{Cursor: cursor, Limit: 7})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page.Posts {
			seen[p.ID()]++
		}
		// A post added mid-way is newer than every cursor, so it must not shift later pages.
		if _, err := f.svc.Add(ctx, alice, "added while paging"); err != nil {
			t.Fatal(err)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(seen) != 25 {
		t.Fatalf("saw %d distinct posts, want 25", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("post %s seen %d times", id, n)
		}
	}
}

func TestListValidatesLimitAndCursor(t *testing.T) {
	f := newFixture(t)
	alice := f.principal(t, "alice@x.io", identity.RoleUser)
	_, _, err := f.svc.List(context.Background(), alice, ports.PageRequest{Limit: 101, Cursor: "%%%"})
	var ve *domain.ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) != 2 {
		t.Fatalf("want limit and cursor errors, got %v", err)
	}
}

// TestPagesEndBeforeTheirByteBudget lists posts whose sizes make pages end early: a page never
// passes the budget unless it holds a single post (which it always does when posts remain),
// and following the cursors still returns every post exactly once.
func TestPagesEndBeforeTheirByteBudget(t *testing.T) {
	// Each post counts its text's length times its first byte's digit, so a "6..." post costs
	// six times its length, as a text of control characters does once JSON-escaped.
	size := func(p *post.Post) int64 { return int64(len(p.Text())) * int64(p.Text()[0]-'0') }
	f := newFixtureWith(t, posts.Settings{PageBytes: 1000, PostSize: size})
	ctx := context.Background()
	alice := f.principal(t, "alice@x.io", identity.RoleUser)
	texts := []string{
		strings.Repeat("1", 300), strings.Repeat("1", 300), strings.Repeat("1", 300), strings.Repeat("1", 300),
		strings.Repeat("6", 400), // alone over the budget
		strings.Repeat("1", 100), strings.Repeat("2", 200), strings.Repeat("1", 500),
	}
	for _, text := range texts {
		if _, err := f.svc.Add(ctx, alice, text); err != nil {
			t.Fatal(err)
		}
	}
	var (
		sizes  [][]int64
		seen   = map[post.ID]bool{}
		cursor string
	)
	for pages := 0; pages < 10; pages++ {
		page, _, err := f.svc.List(ctx, f.refresh(t, alice), ports.PageRequest{Cursor: cursor, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		var total int64
		for _, p := range page.Posts {
			if seen[p.ID()] {
				t.Fatalf("post %s listed twice", p.ID())
			}
			seen[p.ID()] = true
			got = append(got, size(p))
			total += size(p)
		}
		if len(got) == 0 || (len(got) > 1 && total > 1000) {
			t.Fatalf("page %d holds sizes %v: empty, or several posts over the budget", pages, got)
		}
		sizes = append(sizes, got)
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	// Newest first: 500; 400+100 (the 2400 after them does not fit); 2400 alone; 300+300+300; 300.
	want := "[[500 400 100] [2400] [300 300 300] [300]]"
	if fmt.Sprint(sizes) != want || len(seen) != len(texts) {
		t.Fatalf("pages %v, want %s, all %d posts", sizes, want, len(texts))
	}
}

// TestDeletedUsersPostsGo: as a ports.UserDataOwner, the posts context deletes a user's posts
// (and version) in the deleting transaction, only when it commits, and forgets the user's
// cached pages in the cleanup.
func TestDeletedUsersPostsGo(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	alice := f.principal(t, "alice@x.io", identity.RoleUser)
	bob := f.principal(t, "bob@x.io", identity.RoleUser)
	for _, p := range []identity.Principal{alice, bob} {
		if _, err := f.svc.Add(ctx, p, "a post"); err != nil {
			t.Fatal(err)
		}
	}
	errRollback := errors.New("another context failed")
	err := f.env.Store.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		if err := f.svc.DeleteUserData(ctx, tx, alice.UserID); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatal(err)
	}
	if page, _, _ := f.svc.List(ctx, f.refresh(t, alice), ports.PageRequest{}); len(page.Posts) != 1 {
		t.Fatalf("a rolled-back deletion took the posts: %d left", len(page.Posts))
	}
	if err := f.env.Store.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		return f.svc.DeleteUserData(ctx, tx, alice.UserID)
	}); err != nil {
		t.Fatal(err)
	}
	// A deleted user lists nothing (no request of it authenticates any more); what matters is
	// that the rows are gone, so the cache is left out of it.
	_ = f.svc.CleanUpUser(ctx, alice.UserID) // its error is checked below
	if page, _, _ := f.svc.List(ctx, f.refresh(t, alice), ports.PageRequest{}); len(page.Posts) != 0 {
		t.Fatalf("%d posts left after the deletion", len(page.Posts))
	}
	if page, _, _ := f.svc.List(ctx, f.refresh(t, bob), ports.PageRequest{}); len(page.Posts) != 1 {
		t.Fatal("another user's posts went too")
	}
	if err := f.svc.CleanUpUser(ctx, alice.UserID); err != nil || !slices.Contains(f.cache.Forgotten, alice.UserID) {
		t.Fatalf("cleanup: %v, forgotten %v", err, f.cache.Forgotten)
	}
}

// TestWritesOfACallerDeletedMeanwhileAreUnauthenticated: a principal whose account is gone
// by the time its write runs (deleted while the request ran) gets what its next request
// will, unauthenticated, not "no such user".
func TestWritesOfACallerDeletedMeanwhileAreUnauthenticated(t *testing.T) {
	f := newFixture(t)
	ghost := identity.Principal{UserID: identity.UserID(f.env.IDs.NewID()), Role: identity.RoleUser}
	if _, err := f.svc.Add(t.Context(), ghost, "hello"); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Errorf("Add: %v, want unauthenticated", err)
	}
	if err := f.svc.Delete(t.Context(), ghost, f.env.IDs.NewID()); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Errorf("Delete: %v, want unauthenticated", err)
	}
}

// TestPagesWithinTheirBoundAreNotMeasured lists posts whose size bounds fit the page budget:
// with PostSizeBound set the posts are not sized one by one (PostSize walks every text);
// without it they are.
func TestPagesWithinTheirBoundAreNotMeasured(t *testing.T) {
	for _, withBound := range []bool{true, false} {
		sized := 0
		settings := posts.Settings{PageBytes: 1000, PostSize: func(p *post.Post) int64 { sized++; return int64(len(p.Text())) }}
		if withBound {
			settings.PostSizeBound = func(_ post.ID, textBytes int64) int64 { return 2 * textBytes }
		}
		f := newFixtureWith(t, settings)
		alice := f.principal(t, "alice@x.io", identity.RoleUser)
		for range 3 {
			if _, err := f.svc.Add(t.Context(), alice, strings.Repeat("a", 100)); err != nil {
				t.Fatal(err)
			}
		}
		page, _, err := f.svc.List(t.Context(), f.refresh(t, alice), ports.PageRequest{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Posts) != 3 {
			t.Fatalf("bound %v: %d posts, want 3", withBound, len(page.Posts))
		}
		if (sized > 0) == withBound {
			t.Errorf("bound %v: PostSize called %d times", withBound, sized)
		}
	}
}

// TestAddWithinTheQuota: Settings.QuotaBytes bounds an author's texts (an add past it is
// post.ErrQuotaExceeded, stores nothing and leaves the author's stamp, and so their cached
// pages, as they were), and zero means DefaultQuotaBytes.
func TestAddWithinTheQuota(t *testing.T) {
	ctx := context.Background()
	f := newFixtureWith(t, posts.Settings{QuotaBytes: 10})
	p := f.principal(t, "", identity.RoleUser)
	if _, err := f.svc.Add(ctx, p, "123456"); err != nil {
		t.Fatal(err)
	}
	p = f.refresh(t, p)
	if _, err := f.svc.Add(ctx, p, "12345"); !errors.Is(err, post.ErrQuotaExceeded) {
		t.Fatalf("add past the quota: %v, want post.ErrQuotaExceeded", err)
	}
	if after := f.refresh(t, p); after.Stamp(posts.StampScope) != p.Stamp(posts.StampScope) {
		t.Fatalf("a refused add moved the author's stamp from %d to %d", p.Stamp(posts.StampScope), after.Stamp(posts.StampScope))
	}
	if _, err := f.svc.Add(ctx, p, "1234"); err != nil {
		t.Fatalf("add up to the quota: %v", err)
	}
	page, _, err := f.svc.List(ctx, f.refresh(t, p), ports.PageRequest{})
	if err != nil || len(page.Posts) != 2 {
		t.Fatalf("list: %d posts, %v; want the 2 within the quota", len(page.Posts), err)
	}
	d := newFixture(t)
	q := d.principal(t, "", identity.RoleUser)
	if _, err := d.svc.Add(ctx, q, strings.Repeat("x", post.MaxTextBytes)); err != nil {
		t.Fatalf("a 1 MiB add under the default quota: %v", err)
	}
}
