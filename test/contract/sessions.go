package contract

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/acme/postsvc/domain/post"
	"github.com/acme/postsvc/domain/session"
	"github.com/acme/postsvc/domain/user"
	"github.com/acme/postsvc/ports"
)

func sessionTests() []namedTest {
	return []namedTest{
		{"add and read back", testSessionAddAndRead},
		{"update after rotate and revoke", testSessionUpdate},
		{"principal", testPrincipal},
		{"revoke all for user", testRevokeAll},
		{"malformed ids are not found", testMalformedIDs},
	}
}

func assertSameSession(t testing.TB, got, want *session.Session) {
	t.Helper()
	if got.ID() != want.ID() || got.UserID() != want.UserID() || got.RefreshHash() != want.RefreshHash() {
		t.Errorf("session = {%s %s %s}, want {%s %s %s}",
			got.ID(), got.UserID(), got.RefreshHash(), want.ID(), want.UserID(), want.RefreshHash())
	}
	sameInstant(t, "created_at", got.CreatedAt(), want.CreatedAt())
	sameInstant(t, "expires_at", got.ExpiresAt(), want.ExpiresAt())
	sameInstant(t, "rotated_at", got.RotatedAt(), want.RotatedAt())
	switch {
	case (got.RevokedAt() == nil) != (want.RevokedAt() == nil):
		t.Errorf("revoked_at = %v, want %v", got.RevokedAt(), want.RevokedAt())
	case got.RevokedAt() != nil:
		sameInstant(t, "revoked_at", *got.RevokedAt(), *want.RevokedAt())
	}
}

func testSessionAddAndRead(t *testing.T, b Backend) {
	ctx := t.Context()
	u := addUser(t, b, "s@x.io", "", user.RoleUser)
	s, _ := addSession(t, b, u.ID(), time.Now(), 720*time.Hour)
	got, err := b.Repos.Sessions().ByID(ctx, s.ID())
	noErr(t, "ByID", err)
	assertSameSession(t, got, s)

	_, err = b.Repos.Sessions().ByID(ctx, session.ID(newID(t)))
	wantErr(t, "ByID of a missing session", err, session.ErrNotFound)
}

func testSessionUpdate(t *testing.T, b Backend) {
	ctx := t.Context()
	u := addUser(t, b, "rotate@x.io", "", user.RoleUser)
	start := time.Now()
	s, first := addSession(t, b, u.ID(), start, time.Hour)

	stored, err := b.Repos.Sessions().ByID(ctx, s.ID())
	noErr(t, "ByID", err)
	rotated := start.Add(time.Minute)
	second, err := stored.Rotate(first, rotated)
	noErr(t, "Rotate", err)
	noErr(t, "Update", b.Repos.Sessions().Update(ctx, stored))

	got, err := b.Repos.Sessions().ByID(ctx, s.ID())
	noErr(t, "ByID after rotation", err)
	assertSameSession(t, got, stored)
	if got.RefreshHash() != session.HashRefreshToken(second) {
		t.Fatalf("the stored hash is not the new token's")
	}
	sameInstant(t, "rotated_at", got.RotatedAt(), rotated)
	if _, err := b.Repos.Sessions().Principal(ctx, s.ID(), rotated); err != nil {
		t.Fatalf("Principal of a rotated session: %v", err)
	}

	// Replaying the retired token against the stored state is detected as reuse, which is
	// only possible if the new hash was saved.
	replayed := rotated.Add(time.Minute)
	_, err = got.Rotate(first, replayed)
	wantErr(t, "Rotate with the retired token", err, session.ErrReuse)
	noErr(t, "Update after reuse", b.Repos.Sessions().Update(ctx, got))

	revoked, err := b.Repos.Sessions().ByID(ctx, s.ID())
	noErr(t, "ByID after revocation", err)
	if revoked.RevokedAt() == nil {
		t.Fatalf("revocation was not saved")
	}
	sameInstant(t, "revoked_at", *revoked.RevokedAt(), replayed)
	_, err = b.Repos.Sessions().Principal(ctx, s.ID(), replayed)
	wantErr(t, "Principal of a revoked session", err, session.ErrNotFound)

	ghost, _, err := session.New(session.ID(newID(t)), u.ID(), start, time.Hour)
	noErr(t, "session.New", err)
	wantErr(t, "Update of a missing session", b.Repos.Sessions().Update(ctx, ghost), session.ErrNotFound)
}

func testPrincipal(t *testing.T, b Backend) {
	ctx := t.Context()
	now := time.Now()
	admin := addUser(t, b, "admin@x.io", "", user.RoleAdmin)
	member := addUser(t, b, "member@x.io", "", user.RoleUser)
	gone := addUser(t, b, "gone@x.io", "", user.RoleUser)

	active, _ := addSession(t, b, member.ID(), now, time.Hour)
	adminSess, _ := addSession(t, b, admin.ID(), now, time.Hour)
	expiring, _ := addSession(t, b, member.ID(), now, time.Minute)
	revoked, _ := addSession(t, b, member.ID(), now, time.Hour)
	revoked.Revoke(now)
	noErr(t, "Update", b.Repos.Sessions().Update(ctx, revoked))
	orphan, _ := addSession(t, b, gone.ID(), now, time.Hour)
	noErr(t, "Delete user", b.Repos.Users().Delete(ctx, gone.ID()))
	noErr(t, "Bump", b.Repos.Users().BumpPostsVersion(ctx, member.ID()))

	ok := []struct {
		name string
		id   session.ID
		at   time.Time
		want session.Principal
	}{
		{"active user session", active.ID(), now, session.Principal{UserID: member.ID(), SessionID: active.ID(), Role: user.RoleUser, PostsVersion: 1}},
		{"active admin session", adminSess.ID(), now, session.Principal{UserID: admin.ID(), SessionID: adminSess.ID(), Role: user.RoleAdmin}},
		{"just before expiry", expiring.ID(), expiring.ExpiresAt().Add(-10 * time.Millisecond), session.Principal{UserID: member.ID(), SessionID: expiring.ID(), Role: user.RoleUser, PostsVersion: 1}},
	}
	for _, c := range ok {
		t.Run(c.name, func(t *testing.T) {
			got, err := b.Repos.Sessions().Principal(ctx, c.id, c.at)
			noErr(t, "Principal", err)
			if got != c.want {
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
		{"unknown id", session.ID(newID(t)), now},
	}
	for _, c := range gone404 {
		t.Run(c.name, func(t *testing.T) {
			_, err := b.Repos.Sessions().Principal(ctx, c.id, c.at)
			wantErr(t, "Principal", err, session.ErrNotFound)
		})
	}

	// A role change is visible on the next call.
	noErr(t, "ChangeRole", member.ChangeRole(user.RoleAdmin, now))
	noErr(t, "Update", b.Repos.Users().Update(ctx, member))
	got, err := b.Repos.Sessions().Principal(ctx, active.ID(), now)
	noErr(t, "Principal", err)
	if got.Role != user.RoleAdmin {
		t.Fatalf("role after promotion = %s", got.Role)
	}
}

func testRevokeAll(t *testing.T, b Backend) {
	ctx := t.Context()
	start := time.Now()
	u := addUser(t, b, "many@x.io", "", user.RoleUser)
	other := addUser(t, b, "other@x.io", "", user.RoleUser)
	s1, _ := addSession(t, b, u.ID(), start, time.Hour)
	s2, _ := addSession(t, b, u.ID(), start, time.Hour)
	earlier, _ := addSession(t, b, u.ID(), start, time.Hour)
	firstRevocation := start.Add(time.Minute)
	earlier.Revoke(firstRevocation)
	noErr(t, "Update", b.Repos.Sessions().Update(ctx, earlier))
	kept, _ := addSession(t, b, other.ID(), start, time.Hour)

	at := start.Add(2 * time.Minute)
	noErr(t, "RevokeAllForUser", b.Repos.Sessions().RevokeAllForUser(ctx, u.ID(), at))

	for _, c := range []struct {
		id   session.ID
		when time.Time
	}{{s1.ID(), at}, {s2.ID(), at}, {earlier.ID(), firstRevocation}} {
		got, err := b.Repos.Sessions().ByID(ctx, c.id)
		noErr(t, "ByID", err)
		if got.RevokedAt() == nil {
			t.Fatalf("session %s is still active", c.id)
		}
		sameInstant(t, "revoked_at", *got.RevokedAt(), c.when)
		_, err = b.Repos.Sessions().Principal(ctx, c.id, at)
		wantErr(t, "Principal of a revoked session", err, session.ErrNotFound)
	}
	if _, err := b.Repos.Sessions().Principal(ctx, kept.ID(), at); err != nil {
		t.Fatalf("another user's session was revoked: %v", err)
	}
	// Revoking a user with no active session is not an error.
	noErr(t, "RevokeAllForUser again", b.Repos.Sessions().RevokeAllForUser(ctx, u.ID(), at))
}

// testMalformedIDs looks up ids that storage could choke on (invalid UTF-8, longer than any
// id column, non-ASCII, empty): they come straight from URLs and tokens, and must read as
// "not found", never as a storage error.
func testMalformedIDs(t *testing.T, b Backend) {
	ctx := t.Context()
	u := addUser(t, b, "ids@x.io", "", user.RoleUser)
	addPost(t, b, u.ID(), "a post")
	addSession(t, b, u.ID(), time.Now(), time.Hour)
	for _, id := range []string{"\xff\xfe\xfd", strings.Repeat("7", 100), "é-ü-😀", ""} {
		t.Run(fmt.Sprintf("%q", id), func(t *testing.T) {
			_, err := b.Repos.Users().ByID(ctx, user.ID(id))
			wantErr(t, "users ByID", err, user.ErrNotFound)
			_, err = b.Repos.Posts().ByID(ctx, u.ID(), post.ID(id))
			wantErr(t, "posts ByID", err, post.ErrNotFound)
			wantErr(t, "posts Delete", b.Repos.Posts().Delete(ctx, u.ID(), post.ID(id)), post.ErrNotFound)
			list := listPosts(t, b, user.ID(id), "", 10)
			if len(list) != 0 {
				t.Errorf("ListByAuthor of a malformed author returned %d posts", len(list))
			}
			_, err = b.Repos.Sessions().ByID(ctx, session.ID(id))
			wantErr(t, "sessions ByID", err, session.ErrNotFound)
			_, err = b.Repos.Sessions().Principal(ctx, session.ID(id), time.Now())
			wantErr(t, "Principal", err, session.ErrNotFound)
			_, err = b.Repos.Users().Search(ctx, ports.UserQuery{Query: id, Before: user.ID(id), Limit: 10})
			noErr(t, "Search", err)
		})
	}
}
