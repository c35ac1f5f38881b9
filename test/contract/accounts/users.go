package accounts

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	port "github.com/acme/postsvc/ports/accounts"

	"github.com/acme/postsvc/domain/accounts/session"
	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/test/contract"
)

func userTests() []contract.Test[Backend] {
	return []contract.Test[Backend]{
		{Name: "add and read back", Run: testUserAddAndRead},
		{Name: "duplicate email", Run: testUserDuplicateEmail},
		{Name: "concurrent signups with one email", Run: testUserConcurrentDuplicate},
		{Name: "concurrent signups with the email of an account being deleted", Run: testUserSignupsRacingDelete},
		{Name: "not found", Run: testUserNotFound},
		{Name: "update", Run: testUserUpdate},
		{Name: "locked read waits for the holder and sees its commit", Run: testUserLockedRead},
		{Name: "delete", Run: testUserDelete},
		{Name: "search matches literally and case-insensitively", Run: testUserSearch},
		{Name: "search pages newest first", Run: testUserSearchPaging},
		{Name: "count admins", Run: testCountAdmins},
	}
}

func testUserAddAndRead(t *testing.T, b Backend) {
	ctx := t.Context()
	// A creation time with nanoseconds and a non-UTC zone: what comes back must be the same
	// instant, in UTC, to at least the millisecond.
	created := time.Date(2024, 2, 29, 23, 59, 58, 987654321, time.FixedZone("UTC+5", 5*3600))
	u, err := user.New(identity.UserID(contract.NewID(t)), contract.MustEmail(t, "Ada@Example.io"), "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
		"Ada Lovelace 🧮", identity.RoleAdmin, created)
	contract.NoErr(t, "user.New", err)
	contract.NoErr(t, "Add", b.Users().Add(ctx, u))

	byID, err := b.Users().ByID(ctx, u.ID())
	contract.NoErr(t, "ByID", err)
	assertSameUser(t, byID, u)
	contract.SameInstant(t, "created_at", byID.CreatedAt(), created)

	byEmail, err := b.Users().ByEmail(ctx, contract.MustEmail(t, "  ADA@example.IO "))
	contract.NoErr(t, "ByEmail", err)
	assertSameUser(t, byEmail, u)
}

func testUserDuplicateEmail(t *testing.T, b Backend) {
	ctx := t.Context()
	first := addUser(t, b, "a@x.io", "first", identity.RoleUser)
	for _, variant := range []string{"a@x.io", "A@X.io", "A@x.IO", "  a@X.io\t"} {
		t.Run(variant, func(t *testing.T) {
			err := b.Users().Add(ctx, contract.MakeUser(t, variant, "second", identity.RoleUser))
			contract.WantErr(t, "Add "+variant, err, user.ErrEmailTaken)
		})
	}
	t.Run("inside a unit of work", func(t *testing.T) {
		err := b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
			return b.Store.Users(tx).Add(ctx, contract.MakeUser(t, "A@X.IO", "third", identity.RoleUser))
		})
		contract.WantErr(t, "Do", err, user.ErrEmailTaken)
	})
	got, err := b.Users().ByEmail(ctx, contract.MustEmail(t, "a@x.io"))
	contract.NoErr(t, "ByEmail", err)
	assertSameUser(t, got, first)
	all, err := b.Users().Search(ctx, port.UserQuery{})
	contract.NoErr(t, "Search", err)
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
		u := contract.MakeUser(t, "race@x.io", "", identity.RoleUser)
		wg.Go(func() {
			errs[i] = b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
				return b.Store.Users(tx).Add(ctx, u)
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
		contract.WantErr(t, "concurrent Add", err, user.ErrEmailTaken)
	}
	if won != 1 {
		t.Fatalf("%d concurrent signups with one email succeeded, want exactly 1", won)
	}
}

// testUserSignupsRacingDelete races signups with the email of an account that is being
// deleted: each is either the one new account or email_taken, never an error of the storage.
// On MySQL the inserts that waited on the deleted row's key deadlock each other once the delete
// commits, round after round; a unit of work that retried its victims at once lost three
// times in a row (503) in several rounds out of twenty.
func testUserSignupsRacingDelete(t *testing.T, b Backend) {
	const n = 24
	ctx := t.Context()
	for round := range 20 {
		email := fmt.Sprintf("reused-%d@x.io", round)
		old := addUser(t, b, email, "", identity.RoleUser)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			u := contract.MakeUser(t, email, "", identity.RoleUser)
			wg.Go(func() {
				<-start
				errs[i] = b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
					if i == 0 {
						return b.Store.Users(tx).Delete(ctx, old.ID())
					}
					return b.Store.Users(tx).Add(ctx, u)
				})
			})
		}
		close(start)
		wg.Wait()
		contract.NoErr(t, "Delete", errs[0])
		won := 0
		for _, err := range errs[1:] {
			if err == nil {
				won++
				continue
			}
			contract.WantErr(t, fmt.Sprintf("round %d: Add racing the delete", round), err, user.ErrEmailTaken)
		}
		if won > 1 {
			t.Fatalf("round %d: %d signups with one email succeeded", round, won)
		}
	}
}

func testUserNotFound(t *testing.T, b Backend) {
	ctx := t.Context()
	addUser(t, b, "present@x.io", "", identity.RoleUser)
	ghost := contract.MakeUser(t, "ghost@x.io", "", identity.RoleUser)
	cases := []struct {
		name string
		call func() error
	}{
		{"ByID", func() error { _, err := b.Users().ByID(ctx, ghost.ID()); return err }},
		{"ByEmail", func() error { _, err := b.Users().ByEmail(ctx, ghost.Email()); return err }},
		{"Update", func() error { return b.Users().Update(ctx, ghost) }},
		{"Delete", func() error { return b.Users().Delete(ctx, ghost.ID()) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			contract.WantErr(t, c.name, c.call(), user.ErrNotFound)
		})
	}
	// Update must not have created the account it could not find.
	_, err := b.Users().ByID(ctx, ghost.ID())
	contract.WantErr(t, "ByID after Update of a missing account", err, user.ErrNotFound)
}

func testUserUpdate(t *testing.T, b Backend) {
	ctx := t.Context()
	u := addUser(t, b, "rename@x.io", "Old Name", identity.RoleUser)
	other := addUser(t, b, "other@x.io", "Other", identity.RoleUser)
	later := u.CreatedAt().Add(90 * time.Second)

	contract.NoErr(t, "Rename", u.Rename("New Name", later))
	contract.NoErr(t, "ChangeRole", u.ChangeRole(identity.RoleAdmin, later))
	contract.NoErr(t, "Update", b.Users().Update(ctx, u))
	got, err := b.Users().ByID(ctx, u.ID())
	contract.NoErr(t, "ByID", err)
	assertSameUser(t, got, u)
	contract.SameInstant(t, "updated_at", got.UpdatedAt(), later)

	// Saving an unchanged account is not "not found" (MySQL reports 0 changed rows for it).
	contract.NoErr(t, "Update unchanged", b.Users().Update(ctx, u))

	// The empty name is a value like any other and must be written, not skipped.
	contract.NoErr(t, "Rename to empty", u.Rename("", later))
	contract.NoErr(t, "Update", b.Users().Update(ctx, u))
	got, err = b.Users().ByID(ctx, u.ID())
	contract.NoErr(t, "ByID", err)
	if got.Name() != "" {
		t.Errorf("name = %q after renaming to empty", got.Name())
	}

	// Nothing else changed.
	gotOther, err := b.Users().ByID(ctx, other.ID())
	contract.NoErr(t, "ByID other", err)
	assertSameUser(t, gotOther, other)
}

func testUserDelete(t *testing.T, b Backend) {
	ctx := t.Context()
	u := addUser(t, b, "leaving@x.io", "", identity.RoleUser)
	stay := addUser(t, b, "staying@x.io", "", identity.RoleUser)
	// Sessions must not stop an account from being deleted (other contexts' rows are checked
	// by the kernel's contract, test/contract/uow.go).
	sess, _ := addSession(t, b, u.ID(), time.Now(), time.Hour)

	contract.NoErr(t, "Delete", b.Users().Delete(ctx, u.ID()))
	_, err := b.Users().ByID(ctx, u.ID())
	contract.WantErr(t, "ByID after Delete", err, user.ErrNotFound)
	_, err = b.Users().ByEmail(ctx, u.Email())
	contract.WantErr(t, "ByEmail after Delete", err, user.ErrNotFound)
	_, err = b.Sessions().Principal(ctx, sess.ID(), time.Now())
	contract.WantErr(t, "Principal after Delete", err, session.ErrNotFound)
	contract.WantErr(t, "second Delete", b.Users().Delete(ctx, u.ID()), user.ErrNotFound)

	_, err = b.Users().ByID(ctx, stay.ID())
	contract.NoErr(t, "ByID of another account", err)
	// The address is free again.
	addUser(t, b, "leaving@x.io", "", identity.RoleUser)
}

func testUserSearch(t *testing.T, b Backend) {
	ctx := t.Context()
	plain := addUser(t, b, "plain@x.io", "Plain Person", identity.RoleUser)
	percent := addUser(t, b, "percent%sign@x.io", "100% real", identity.RoleUser)
	under := addUser(t, b, "under_score@x.io", "Under Score", identity.RoleUser)
	quote := addUser(t, b, "obrien@x.io", "O'Brien", identity.RoleUser)
	slash := addUser(t, b, "slash@x.io", `back\slash`, identity.RoleUser)
	bang := addUser(t, b, "bang@x.io", "Hey! Listen", identity.RoleAdmin)
	umlaut := addUser(t, b, "zoe@x.io", "Zoë Ärger", identity.RoleUser)
	all := []identity.UserID{plain.ID(), percent.ID(), under.ID(), quote.ID(), slash.ID(), bang.ID(), umlaut.ID()}

	cases := []struct {
		query string
		want  []identity.UserID
	}{
		{"", all},
		{"%", []identity.UserID{percent.ID()}},
		{"_", []identity.UserID{under.ID()}},
		{"'", []identity.UserID{quote.ID()}},
		{`\`, []identity.UserID{slash.ID()}},
		{`\s`, []identity.UserID{slash.ID()}},
		{"!", []identity.UserID{bang.ID()}},
		{"%%", nil},
		{"r_al", nil}, // "_" as a wildcard would match "real"
		{"r%al", nil}, // "%" as a wildcard would match "real"
		{"0% r", []identity.UserID{percent.ID()}},
		{"PLAIN@X", []identity.UserID{plain.ID()}},      // email, case-insensitive
		{"plain person", []identity.UserID{plain.ID()}}, // name, case-insensitive
		{"o'BRIEN", []identity.UserID{quote.ID()}},
		{"ZOË", []identity.UserID{umlaut.ID()}}, // beyond ASCII
		{"ärger", []identity.UserID{umlaut.ID()}},
		{"zoe", []identity.UserID{umlaut.ID()}}, // matches the email, not an accent-folded name
		{"zoé", nil},                            // no accent folding
		{"@x.io", all},
		{"nobody", nil},
		// No email or name holds a control character. SQLite's LIKE ends its pattern at a NUL,
		// so these matched everyone there.
		{"\x00", nil},
		{"\x00zzz", nil},
		{"plain\x00", nil},
	}
	for _, c := range cases {
		t.Run("q="+c.query, func(t *testing.T) {
			got, err := b.Users().Search(ctx, port.UserQuery{Query: c.query})
			contract.NoErr(t, "Search", err)
			want := contract.NewestFirst(c.want)
			if ids := userIDs(got); !slices.Equal(ids, want) {
				t.Errorf("Search(%q) = %v, want %v", c.query, ids, want)
			}
		})
	}
	got, err := b.Users().Search(ctx, port.UserQuery{Query: "hey"})
	contract.NoErr(t, "Search", err)
	if len(got) == 1 {
		assertSameUser(t, got[0], bang)
	}
}

func testUserSearchPaging(t *testing.T, b Backend) {
	ctx := t.Context()
	var all, matching []identity.UserID
	for i := range 7 {
		name := "odd"
		if i%2 == 0 {
			name = "even"
		}
		u := addUser(t, b, name+string(rune('a'+i))+"@x.io", name, identity.RoleUser)
		all = append(all, u.ID())
		if name == "even" {
			matching = append(matching, u.ID())
		}
	}
	for _, c := range []struct {
		query string
		limit int
		want  []identity.UserID
	}{
		{"", 3, all},
		{"", 1, all},
		{"", 7, all},
		{"even", 2, matching},
	} {
		var got []identity.UserID
		var before identity.UserID
		pages := 0
		for {
			page, err := b.Users().Search(ctx, port.UserQuery{Query: c.query, Before: before, Limit: c.limit})
			contract.NoErr(t, "Search", err)
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
		if want := contract.NewestFirst(c.want); !slices.Equal(got, want) {
			t.Errorf("query %q limit %d: pages gave %v, want each of %v once, newest first", c.query, c.limit, got, want)
		}
	}
}

func testCountAdmins(t *testing.T, b Backend) {
	ctx := t.Context()
	count := func() int {
		t.Helper()
		n, err := b.Users().CountAdminsForUpdate(ctx)
		contract.NoErr(t, "CountAdminsForUpdate", err)
		return n
	}
	if n := count(); n != 0 {
		t.Fatalf("admins in an empty store = %d", n)
	}
	a1 := addUser(t, b, "admin1@x.io", "", identity.RoleAdmin)
	addUser(t, b, "admin2@x.io", "", identity.RoleAdmin)
	addUser(t, b, "user@x.io", "", identity.RoleUser)
	if n := count(); n != 2 {
		t.Fatalf("admins = %d, want 2", n)
	}
	// Inside a transaction, as the last-admin check uses it, it sees the transaction's writes.
	err := b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		contract.NoErr(t, "ChangeRole", a1.ChangeRole(identity.RoleUser, time.Now()))
		if err := b.Store.Users(tx).Update(ctx, a1); err != nil {
			return err
		}
		n, err := b.Store.Users(tx).CountAdminsForUpdate(ctx)
		if err != nil {
			return err
		}
		if n != 1 {
			t.Errorf("admins inside the transaction after a demotion = %d, want 1", n)
		}
		return nil
	})
	contract.NoErr(t, "Do", err)
	if n := count(); n != 1 {
		t.Fatalf("admins after the demotion = %d, want 1", n)
	}
}

// testUserLockedRead: while one unit of work holds a user it read with ByIDForUpdate, a second
// one's ByIDForUpdate of it waits, and then reads what the first committed. This is what keeps
// a rename that races a role change from writing the old role back over it.
func testUserLockedRead(t *testing.T, b Backend) {
	u := addUser(t, b, "locked-user@x.io", "Before", identity.RoleUser)
	var seen *user.User
	lockedReadWaits(t, b, "user",
		func(ctx context.Context, tx ports.Scope) (func() error, error) {
			held, err := b.Store.Users(tx).ByIDForUpdate(ctx, u.ID())
			if err != nil {
				return nil, err
			}
			if err := held.ChangeRole(identity.RoleAdmin, u.CreatedAt().Add(time.Minute)); err != nil {
				return nil, err
			}
			return func() error { return b.Store.Users(tx).Update(ctx, held) }, nil
		},
		func(ctx context.Context, tx ports.Scope) (err error) {
			seen, err = b.Store.Users(tx).ByIDForUpdate(ctx, u.ID())
			return err
		})
	if seen.Role() != identity.RoleAdmin {
		t.Fatalf("the waiting read saw role %q, not the holder's committed %q", seen.Role(), identity.RoleAdmin)
	}
}
