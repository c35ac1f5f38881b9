package contract

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/acme/postsvc/domain/session"
	"github.com/acme/postsvc/domain/user"
	"github.com/acme/postsvc/ports"
)

func userTests() []namedTest {
	return []namedTest{
		{"add and read back", testUserAddAndRead},
		{"duplicate email", testUserDuplicateEmail},
		{"concurrent signups with one email", testUserConcurrentDuplicate},
		{"not found", testUserNotFound},
		{"update", testUserUpdate},
		{"delete", testUserDelete},
		{"search matches literally and case-insensitively", testUserSearch},
		{"search pages newest first", testUserSearchPaging},
		{"count admins", testCountAdmins},
		{"posts version", testPostsVersion},
	}
}

func testUserAddAndRead(t *testing.T, b Backend) {
	ctx := t.Context()
	// A creation time with nanoseconds and a non-UTC zone: what comes back must be the same
	// instant, in UTC, to at least the millisecond.
	created := time.Date(2024, 2, 29, 23, 59, 58, 987654321, time.FixedZone("UTC+5", 5*3600))
	u, err := user.New(user.ID(newID(t)), mustEmail(t, "Ada@Example.io"), "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
		"Ada Lovelace 🧮", user.RoleAdmin, created)
	noErr(t, "user.New", err)
	noErr(t, "Add", b.Repos.Users().Add(ctx, u))

	byID, err := b.Repos.Users().ByID(ctx, u.ID())
	noErr(t, "ByID", err)
	assertSameUser(t, byID, u)
	sameInstant(t, "created_at", byID.CreatedAt(), created)

	byEmail, err := b.Repos.Users().ByEmail(ctx, mustEmail(t, "  ADA@example.IO "))
	noErr(t, "ByEmail", err)
	assertSameUser(t, byEmail, u)
}

func testUserDuplicateEmail(t *testing.T, b Backend) {
	ctx := t.Context()
	first := addUser(t, b, "a@x.io", "first", user.RoleUser)
	for _, variant := range []string{"a@x.io", "A@X.io", "A@x.IO", "  a@X.io\t"} {
		t.Run(variant, func(t *testing.T) {
			err := b.Repos.Users().Add(ctx, makeUser(t, variant, "second", user.RoleUser))
			wantErr(t, "Add "+variant, err, user.ErrEmailTaken)
		})
	}
	t.Run("inside a unit of work", func(t *testing.T) {
		err := b.UoW.Do(ctx, func(ctx context.Context, tx ports.Repositories) error {
			return tx.Users().Add(ctx, makeUser(t, "A@X.IO", "third", user.RoleUser))
		})
		wantErr(t, "Do", err, user.ErrEmailTaken)
	})
	got, err := b.Repos.Users().ByEmail(ctx, mustEmail(t, "a@x.io"))
	noErr(t, "ByEmail", err)
	assertSameUser(t, got, first)
	all, err := b.Repos.Users().Search(ctx, ports.UserQuery{})
	noErr(t, "Search", err)
	if len(all) != 1 {
		t.Fatalf("%d accounts after duplicate signups, want 1", len(all))
	}
}

// testUserConcurrentDuplicate races signups with one email: a check-then-insert would let
// several through, the unique index lets exactly one.
func testUserConcurrentDuplicate(t *testing.T, b Backend) {
	const n = 8
	ctx := t.Context()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		u := makeUser(t, "race@x.io", "", user.RoleUser)
		wg.Go(func() {
			errs[i] = b.UoW.Do(ctx, func(ctx context.Context, tx ports.Repositories) error {
				return tx.Users().Add(ctx, u)
			})
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
			continue
		}
		wantErr(t, "concurrent Add", err, user.ErrEmailTaken)
	}
	if won != 1 {
		t.Fatalf("%d concurrent signups with one email succeeded, want exactly 1", won)
	}
}

func testUserNotFound(t *testing.T, b Backend) {
	ctx := t.Context()
	addUser(t, b, "present@x.io", "", user.RoleUser)
	ghost := makeUser(t, "ghost@x.io", "", user.RoleUser)
	cases := []struct {
		name string
		call func() error
	}{
		{"ByID", func() error { _, err := b.Repos.Users().ByID(ctx, ghost.ID()); return err }},
		{"ByEmail", func() error { _, err := b.Repos.Users().ByEmail(ctx, ghost.Email()); return err }},
		{"Update", func() error { return b.Repos.Users().Update(ctx, ghost) }},
		{"Delete", func() error { return b.Repos.Users().Delete(ctx, ghost.ID()) }},
		{"BumpPostsVersion", func() error { return b.Repos.Users().BumpPostsVersion(ctx, ghost.ID()) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantErr(t, c.name, c.call(), user.ErrNotFound)
		})
	}
	// Update must not have created the account it could not find.
	_, err := b.Repos.Users().ByID(ctx, ghost.ID())
	wantErr(t, "ByID after Update of a missing account", err, user.ErrNotFound)
}

func testUserUpdate(t *testing.T, b Backend) {
	ctx := t.Context()
	u := addUser(t, b, "rename@x.io", "Old Name", user.RoleUser)
	other := addUser(t, b, "other@x.io", "Other", user.RoleUser)
	later := u.CreatedAt().Add(90 * time.Second)

	noErr(t, "Rename", u.Rename("New Name", later))
	noErr(t, "ChangeRole", u.ChangeRole(user.RoleAdmin, later))
	noErr(t, "Update", b.Repos.Users().Update(ctx, u))
	got, err := b.Repos.Users().ByID(ctx, u.ID())
	noErr(t, "ByID", err)
	assertSameUser(t, got, u)
	sameInstant(t, "updated_at", got.UpdatedAt(), later)

	// Saving an unchanged account is not "not found" (MySQL reports 0 changed rows for it).
	noErr(t, "Update unchanged", b.Repos.Users().Update(ctx, u))

	// The empty name is a value like any other and must be written, not skipped.
	noErr(t, "Rename to empty", u.Rename("", later))
	noErr(t, "Update", b.Repos.Users().Update(ctx, u))
	got, err = b.Repos.Users().ByID(ctx, u.ID())
	noErr(t, "ByID", err)
	if got.Name() != "" {
		t.Errorf("name = %q after renaming to empty", got.Name())
	}

	// Nothing else changed.
	gotOther, err := b.Repos.Users().ByID(ctx, other.ID())
	noErr(t, "ByID other", err)
	assertSameUser(t, gotOther, other)
}

func testUserDelete(t *testing.T, b Backend) {
	ctx := t.Context()
	u := addUser(t, b, "leaving@x.io", "", user.RoleUser)
	stay := addUser(t, b, "staying@x.io", "", user.RoleUser)
	// Content and sessions must not stop an account from being deleted.
	addPost(t, b, u.ID(), "a post")
	sess, _ := addSession(t, b, u.ID(), time.Now(), time.Hour)

	noErr(t, "Delete", b.Repos.Users().Delete(ctx, u.ID()))
	_, err := b.Repos.Users().ByID(ctx, u.ID())
	wantErr(t, "ByID after Delete", err, user.ErrNotFound)
	_, err = b.Repos.Users().ByEmail(ctx, u.Email())
	wantErr(t, "ByEmail after Delete", err, user.ErrNotFound)
	_, err = b.Repos.Sessions().Principal(ctx, sess.ID(), time.Now())
	wantErr(t, "Principal after Delete", err, session.ErrNotFound)
	wantErr(t, "second Delete", b.Repos.Users().Delete(ctx, u.ID()), user.ErrNotFound)

	_, err = b.Repos.Users().ByID(ctx, stay.ID())
	noErr(t, "ByID of another account", err)
	// The address is free again.
	addUser(t, b, "leaving@x.io", "", user.RoleUser)
}

func testUserSearch(t *testing.T, b Backend) {
	ctx := t.Context()
	plain := addUser(t, b, "plain@x.io", "Plain Person", user.RoleUser)
	percent := addUser(t, b, "percent%sign@x.io", "100% real", user.RoleUser)
	under := addUser(t, b, "under_score@x.io", "Under Score", user.RoleUser)
	quote := addUser(t, b, "obrien@x.io", "O'Brien", user.RoleUser)
	slash := addUser(t, b, "slash@x.io", `back\slash`, user.RoleUser)
	bang := addUser(t, b, "bang@x.io", "Hey! Listen", user.RoleAdmin)
	umlaut := addUser(t, b, "zoe@x.io", "Zoë Ärger", user.RoleUser)
	all := []user.ID{plain.ID(), percent.ID(), under.ID(), quote.ID(), slash.ID(), bang.ID(), umlaut.ID()}

	cases := []struct {
		query string
		want  []user.ID
	}{
		{"", all},
		{"%", []user.ID{percent.ID()}},
		{"_", []user.ID{under.ID()}},
		{"'", []user.ID{quote.ID()}},
		{`\`, []user.ID{slash.ID()}},
		{`\s`, []user.ID{slash.ID()}},
		{"!", []user.ID{bang.ID()}},
		{"%%", nil},
		{"r_al", nil}, // "_" as a wildcard would match "real"
		{"r%al", nil}, // "%" as a wildcard would match "real"
		{"0% r", []user.ID{percent.ID()}},
		{"PLAIN@X", []user.ID{plain.ID()}},      // email, case-insensitive
		{"plain person", []user.ID{plain.ID()}}, // name, case-insensitive
		{"o'BRIEN", []user.ID{quote.ID()}},
		{"ZOË", []user.ID{umlaut.ID()}}, // beyond ASCII
		{"ärger", []user.ID{umlaut.ID()}},
		{"zoe", []user.ID{umlaut.ID()}}, // matches the email, not an accent-folded name
		{"zoé", nil},                    // no accent folding
		{"@x.io", all},
		{"nobody", nil},
	}
	for _, c := range cases {
		t.Run("q="+c.query, func(t *testing.T) {
			got, err := b.Repos.Users().Search(ctx, ports.UserQuery{Query: c.query})
			noErr(t, "Search", err)
			want := newestFirst(c.want)
			if ids := userIDs(got); !slices.Equal(ids, want) {
				t.Errorf("Search(%q) = %v, want %v", c.query, ids, want)
			}
		})
	}
	got, err := b.Repos.Users().Search(ctx, ports.UserQuery{Query: "hey"})
	noErr(t, "Search", err)
	if len(got) == 1 {
		assertSameUser(t, got[0], bang)
	}
}

func testUserSearchPaging(t *testing.T, b Backend) {
	ctx := t.Context()
	var all, matching []user.ID
	for i := range 7 {
		name := "odd"
		if i%2 == 0 {
			name = "even"
		}
		u := addUser(t, b, name+string(rune('a'+i))+"@x.io", name, user.RoleUser)
		all = append(all, u.ID())
		if name == "even" {
			matching = append(matching, u.ID())
		}
	}
	for _, c := range []struct {
		query string
		limit int
		want  []user.ID
	}{
		{"", 3, all},
		{"", 1, all},
		{"", 7, all},
		{"even", 2, matching},
	} {
		var got []user.ID
		var before user.ID
		pages := 0
		for {
			page, err := b.Repos.Users().Search(ctx, ports.UserQuery{Query: c.query, Before: before, Limit: c.limit})
			noErr(t, "Search", err)
			if len(page) > c.limit {
				t.Fatalf("page of %d with limit %d", len(page), c.limit)
			}
			if len(page) == 0 {
				break
			}
			got = append(got, userIDs(page)...)
			before = page[len(page)-1].ID()
			if pages++; pages > len(all)+1 {
				t.Fatalf("paging does not end")
			}
		}
		if want := newestFirst(c.want); !slices.Equal(got, want) {
			t.Errorf("query %q limit %d: pages gave %v, want each of %v once, newest first", c.query, c.limit, got, want)
		}
	}
}

func testCountAdmins(t *testing.T, b Backend) {
	ctx := t.Context()
	count := func() int {
		t.Helper()
		n, err := b.Repos.Users().CountAdminsForUpdate(ctx)
		noErr(t, "CountAdminsForUpdate", err)
		return n
	}
	if n := count(); n != 0 {
		t.Fatalf("admins in an empty store = %d", n)
	}
	a1 := addUser(t, b, "admin1@x.io", "", user.RoleAdmin)
	addUser(t, b, "admin2@x.io", "", user.RoleAdmin)
	addUser(t, b, "user@x.io", "", user.RoleUser)
	if n := count(); n != 2 {
		t.Fatalf("admins = %d, want 2", n)
	}
	// Inside a transaction, as the last-admin check uses it, it sees the transaction's writes.
	err := b.UoW.Do(ctx, func(ctx context.Context, tx ports.Repositories) error {
		noErr(t, "ChangeRole", a1.ChangeRole(user.RoleUser, time.Now()))
		if err := tx.Users().Update(ctx, a1); err != nil {
			return err
		}
		n, err := tx.Users().CountAdminsForUpdate(ctx)
		if err != nil {
			return err
		}
		if n != 1 {
			t.Errorf("admins inside the transaction after a demotion = %d, want 1", n)
		}
		return nil
	})
	noErr(t, "Do", err)
	if n := count(); n != 1 {
		t.Fatalf("admins after the demotion = %d, want 1", n)
	}
}

func testPostsVersion(t *testing.T, b Backend) {
	ctx := t.Context()
	u := addUser(t, b, "writer@x.io", "", user.RoleUser)
	other := addUser(t, b, "other@x.io", "", user.RoleUser)
	now := time.Now()
	sess, _ := addSession(t, b, u.ID(), now, time.Hour)
	otherSess, _ := addSession(t, b, other.ID(), now, time.Hour)
	version := func(id session.ID) int64 {
		t.Helper()
		p, err := b.Repos.Sessions().Principal(ctx, id, now)
		noErr(t, "Principal", err)
		return p.PostsVersion
	}
	if v := version(sess.ID()); v != 0 {
		t.Fatalf("posts version of a new account = %d, want 0", v)
	}
	noErr(t, "Bump", b.Repos.Users().BumpPostsVersion(ctx, u.ID()))
	noErr(t, "Bump", b.UoW.Do(ctx, func(ctx context.Context, tx ports.Repositories) error {
		return tx.Users().BumpPostsVersion(ctx, u.ID())
	}))
	if v := version(sess.ID()); v != 2 {
		t.Fatalf("posts version after two bumps = %d, want 2", v)
	}
	// A bump in a transaction that fails is rolled back with it.
	_ = b.UoW.Do(ctx, func(ctx context.Context, tx ports.Repositories) error {
		if err := tx.Users().BumpPostsVersion(ctx, u.ID()); err != nil {
			return err
		}
		return errBoom
	})
	if v := version(sess.ID()); v != 2 {
		t.Fatalf("posts version after a rolled-back bump = %d, want 2", v)
	}
	// Concurrent bumps are never lost.
	const n = 10
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = b.UoW.Do(ctx, func(ctx context.Context, tx ports.Repositories) error {
				return tx.Users().BumpPostsVersion(ctx, u.ID())
			})
		})
	}
	wg.Wait()
	for _, err := range errs {
		noErr(t, "concurrent Bump", err)
	}
	if v := version(sess.ID()); v != 2+n {
		t.Fatalf("posts version after %d concurrent bumps = %d, want %d", n, v, 2+n)
	}
	if v := version(otherSess.ID()); v != 0 {
		t.Fatalf("another account's posts version = %d, want 0", v)
	}
}
