package accounts

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	port "github.com/acme/postsvc/ports/accounts"

	"github.com/acme/postsvc/domain/accounts/session"
	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/test/contract"
)

func sessionTests() []contract.Test[Backend] {
	return []contract.Test[Backend]{
		{Name: "add and read back", Run: testSessionAddAndRead},
		{Name: "update after rotate and revoke", Run: testSessionUpdate},
		{Name: "locked read waits for the holder and sees its commit", Run: testSessionLockedRead},
		{Name: "principal", Run: testPrincipal},
		{Name: "revoke all for user", Run: testRevokeAll},
		{Name: "malformed ids are not found", Run: testMalformedIDs},
	}
}

func assertSameSession(t testing.TB, got, want *session.Session) {
	t.Helper()
	if got.ID() != want.ID() || got.UserID() != want.UserID() || got.RefreshHash() != want.RefreshHash() {
		t.Errorf("session = {%s %s %s}, want {%s %s %s}",
			got.ID(), got.UserID(), got.RefreshHash(), want.ID(), want.UserID(), want.RefreshHash())
	}
	contract.SameInstant(t, "created_at", got.CreatedAt(), want.CreatedAt())
	contract.SameInstant(t, "expires_at", got.ExpiresAt(), want.ExpiresAt())
	contract.SameInstant(t, "rotated_at", got.RotatedAt(), want.RotatedAt())
	switch {
	case (got.RevokedAt() == nil) != (want.RevokedAt() == nil):
		t.Errorf("revoked_at = %v, want %v", got.RevokedAt(), want.RevokedAt())
	case got.RevokedAt() != nil:
		contract.SameInstant(t, "revoked_at", *got.RevokedAt(), *want.RevokedAt())
	}
}

func testSessionAddAndRead(t *testing.T, b Backend) {
	ctx := t.Context()
	u := addUser(t, b, "s@x.io", "", identity.RoleUser)
	s, _ := addSession(t, b, u.ID(), time.Now(), 720*time.Hour)
	got, err := b.Sessions().ByID(ctx, s.ID())
	contract.NoErr(t, "ByID", err)
	assertSameSession(t, got, s)

	_, err = b.Sessions().ByID(ctx, session.ID(contract.NewID(t)))
	contract.WantErr(t, "ByID of a missing session", err, session.ErrNotFound)

	// A session of a user deleted meanwhile (a login whose account an admin deleted after
	// its password was checked) is refused as the user's, which login answers as an unknown
	// email.
	ghost, _, err := session.New(session.ID(contract.NewID(t)), identity.UserID(contract.NewID(t)), time.Now(), time.Hour)
	contract.NoErr(t, "session.New", err)
	contract.WantErr(t, "Add of a session of a missing user", b.Sessions().Add(ctx, ghost), user.ErrNotFound)
}

func testSessionUpdate(t *testing.T, b Backend) {
	ctx := t.Context()
	u := addUser(t, b, "rotate@x.io", "", identity.RoleUser)
	start := time.Now()
	s, first := addSession(t, b, u.ID(), start, time.Hour)

	stored, err := b.Sessions().ByID(ctx, s.ID())
	contract.NoErr(t, "ByID", err)
	rotated := start.Add(time.Minute)
	second, err := stored.Rotate(first, rotated)
	contract.NoErr(t, "Rotate", err)
	contract.NoErr(t, "Update", b.Sessions().Update(ctx, stored))

	got, err := b.Sessions().ByID(ctx, s.ID())
	contract.NoErr(t, "ByID after rotation", err)
	assertSameSession(t, got, stored)
	if got.RefreshHash() != session.HashRefreshToken(second) {
		t.Fatalf("the stored hash is not the new token's")
	}
	contract.SameInstant(t, "rotated_at", got.RotatedAt(), rotated)
	if _, err := b.Sessions().Principal(ctx, s.ID(), rotated); err != nil {
		t.Fatalf("Principal of a rotated session: %v", err)
	}

	// Replaying the retired token against the stored state is detected as reuse, which is
	// only possible if the new hash was saved.
	replayed := rotated.Add(time.Minute)
	_, err = got.Rotate(first, replayed)
	contract.WantErr(t, "Rotate with the retired token", err, session.ErrReuse)
	contract.NoErr(t, "Update after reuse", b.Sessions().Update(ctx, got))

	revoked, err := b.Sessions().ByID(ctx, s.ID())
	contract.NoErr(t, "ByID after revocation", err)
	if revoked.RevokedAt() == nil {
		t.Fatalf("revocation was not saved")
	}
	contract.SameInstant(t, "revoked_at", *revoked.RevokedAt(), replayed)
	_, err = b.Sessions().Principal(ctx, s.ID(), replayed)
	contract.WantErr(t, "Principal of a revoked session", err, session.ErrNotFound)

	ghost, _, err := session.New(session.ID(contract.NewID(t)), u.ID(), start, time.Hour)
	contract.NoErr(t, "session.New", err)
	contract.WantErr(t, "Update of a missing session", b.Sessions().Update(ctx, ghost), session.ErrNotFound)
}

func testPrincipal(t *testing.T, b Backend) {
	ctx := t.Context()
	now := time.Now()
	admin := addUser(t, b, "admin@x.io", "", identity.RoleAdmin)
	member := addUser(t, b, "member@x.io", "", identity.RoleUser)
	gone := addUser(t, b, "gone@x.io", "", identity.RoleUser)

	active, _ := addSession(t, b, member.ID(), now, time.Hour)
	adminSess, _ := addSession(t, b, admin.ID(), now, time.Hour)
	expiring, _ := addSession(t, b, member.ID(), now, time.Minute)
	revoked, _ := addSession(t, b, member.ID(), now, time.Hour)
	revoked.Revoke(now)
	contract.NoErr(t, "Update", b.Sessions().Update(ctx, revoked))
	orphan, _ := addSession(t, b, gone.ID(), now, time.Hour)
	contract.NoErr(t, "Delete user", b.Users().Delete(ctx, gone.ID()))

	ok := []struct {
		name string
		id   session.ID
		at   time.Time
		want identity.Principal
	}{
		{"active user session", active.ID(), now, identity.Principal{UserID: member.ID(), Role: identity.RoleUser, Credential: sessionCredential(active)}},
		{"active admin session", adminSess.ID(), now, identity.Principal{UserID: admin.ID(), Role: identity.RoleAdmin, Credential: sessionCredential(adminSess)}},
		{"just before expiry", expiring.ID(), expiring.ExpiresAt().Add(-10 * time.Millisecond), identity.Principal{UserID: member.ID(), Role: identity.RoleUser, Credential: sessionCredential(expiring)}},
	}
	for _, c := range ok {
		t.Run(c.name, func(t *testing.T) {
			got, err := b.Sessions().Principal(ctx, c.id, c.at)
			contract.NoErr(t, "Principal", err)
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("Principal = %+v, want %+v", got, c.want)
			}
		})
	}

	gone404 := []struct {
		name string
		id   session.ID
		at   time.Time
	}{
		{"revoked", revoked.ID(), now},
		{"expired", expiring.ID(), expiring.ExpiresAt().Add(10 * time.Millisecond)},
		{"at the expiry instant", expiring.ID(), expiring.ExpiresAt()},
		{"user deleted", orphan.ID(), now},
		{"unknown id", session.ID(contract.NewID(t)), now},
	}
	for _, c := range gone404 {
		t.Run(c.name, func(t *testing.T) {
			_, err := b.Sessions().Principal(ctx, c.id, c.at)
			contract.WantErr(t, "Principal", err, session.ErrNotFound)
		})
	}

	// A role change is visible on the next call.
	contract.NoErr(t, "ChangeRole", member.ChangeRole(identity.RoleAdmin, now))
	contract.NoErr(t, "Update", b.Users().Update(ctx, member))
	got, err := b.Sessions().Principal(ctx, active.ID(), now)
	contract.NoErr(t, "Principal", err)
	if got.Role != identity.RoleAdmin {
		t.Fatalf("role after promotion = %s", got.Role)
	}
}

func testRevokeAll(t *testing.T, b Backend) {
	ctx := t.Context()
	start := time.Now()
	u := addUser(t, b, "many@x.io", "", identity.RoleUser)
	other := addUser(t, b, "other@x.io", "", identity.RoleUser)
	s1, _ := addSession(t, b, u.ID(), start, time.Hour)
	s2, _ := addSession(t, b, u.ID(), start, time.Hour)
	earlier, _ := addSession(t, b, u.ID(), start, time.Hour)
	firstRevocation := start.Add(time.Minute)
	earlier.Revoke(firstRevocation)
	contract.NoErr(t, "Update", b.Sessions().Update(ctx, earlier))
	kept, _ := addSession(t, b, other.ID(), start, time.Hour)

	at := start.Add(2 * time.Minute)
	contract.NoErr(t, "RevokeAllForUser", b.Sessions().RevokeAllForUser(ctx, u.ID(), at))

	for _, c := range []struct {
		id   session.ID
		when time.Time
	}{{s1.ID(), at}, {s2.ID(), at}, {earlier.ID(), firstRevocation}} {
		got, err := b.Sessions().ByID(ctx, c.id)
		contract.NoErr(t, "ByID", err)
		if got.RevokedAt() == nil {
			t.Fatalf("session %s is still active", c.id)
		}
		contract.SameInstant(t, "revoked_at", *got.RevokedAt(), c.when)
		_, err = b.Sessions().Principal(ctx, c.id, at)
		contract.WantErr(t, "Principal of a revoked session", err, session.ErrNotFound)
	}
	if _, err := b.Sessions().Principal(ctx, kept.ID(), at); err != nil {
		t.Fatalf("another user's session was revoked: %v", err)
	}
	// Revoking a user with no active session is not an error.
	contract.NoErr(t, "RevokeAllForUser again", b.Sessions().RevokeAllForUser(ctx, u.ID(), at))
}

// testMalformedIDs looks up ids that storage could choke on (invalid UTF-8, longer than any
// id column, non-ASCII, empty): they come straight from URLs and tokens, and must read as
// "not found", never as a storage error.
func testMalformedIDs(t *testing.T, b Backend) {
	ctx := t.Context()
	u := addUser(t, b, "ids@x.io", "", identity.RoleUser)
	addSession(t, b, u.ID(), time.Now(), time.Hour)
	for _, id := range []string{"\xff\xfe\xfd", strings.Repeat("7", 100), "é-ü-😀", ""} {
		t.Run(fmt.Sprintf("%q", id), func(t *testing.T) {
			_, err := b.Users().ByID(ctx, identity.UserID(id))
			contract.WantErr(t, "users ByID", err, user.ErrNotFound)
			_, err = b.Sessions().ByID(ctx, session.ID(id))
			contract.WantErr(t, "sessions ByID", err, session.ErrNotFound)
			_, err = b.Sessions().Principal(ctx, session.ID(id), time.Now())
			contract.WantErr(t, "Principal", err, session.ErrNotFound)
			_, err = b.Users().Search(ctx, port.UserQuery{Query: id, Before: identity.UserID(id), Limit: 10})
			contract.NoErr(t, "Search", err)
		})
	}
}

func sessionCredential(s *session.Session) identity.Credential {
	return identity.Credential{Kind: identity.CredentialSession, ID: string(s.ID()), ExpiresAt: storedTime(s.ExpiresAt())}
}

// storedTime is t as the stores keep it: UTC, to the microsecond.
func storedTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// testSessionLockedRead: while one unit of work holds a session it read with ByIDForUpdate, a
// second one's ByIDForUpdate of it waits, and then reads what the first committed. This is
// what keeps two refreshes with one token from both rotating it.
func testSessionLockedRead(t *testing.T, b Backend) {
	u := addUser(t, b, "locked@x.io", "", identity.RoleUser)
	start := time.Now()
	s, first := addSession(t, b, u.ID(), start, time.Hour)
	var seen *session.Session
	lockedReadWaits(t, b, "session",
		func(ctx context.Context, tx ports.Scope) (func() error, error) {
			sess, err := b.Store.Sessions(tx).ByIDForUpdate(ctx, s.ID())
			if err != nil {
				return nil, err
			}
			if _, err := sess.Rotate(first, start.Add(time.Minute)); err != nil {
				return nil, err
			}
			return func() error { return b.Store.Sessions(tx).Update(ctx, sess) }, nil
		},
		func(ctx context.Context, tx ports.Scope) (err error) {
			seen, err = b.Store.Sessions(tx).ByIDForUpdate(ctx, s.ID())
			return err
		})
	if _, err := seen.Rotate(first, start.Add(2*time.Minute)); !errors.Is(err, session.ErrReuse) {
		t.Fatalf("the waiting read saw the session before the holder's rotation (Rotate with the retired token: %v, want reuse)", err)
	}
}

// lockedReadWaits is the contract of a locked read (ByIDForUpdate): hold runs in one unit of
// work and returns the write to commit; while it holds the row, read, in a second unit of
// work, must wait; once the first commits, read returns, and the caller checks that it saw
// the commit.
func lockedReadWaits(t *testing.T, b Backend, what string,
	hold func(ctx context.Context, tx ports.Scope) (commit func() error, err error),
	read func(ctx context.Context, tx ports.Scope) error,
) {
	t.Helper()
	contract.SecondWaits(t, b.UoW, what, hold, read)
}
