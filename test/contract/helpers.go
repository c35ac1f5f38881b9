package contract

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acme/postsvc/domain/post"
	"github.com/acme/postsvc/domain/session"
	"github.com/acme/postsvc/domain/user"
	"github.com/acme/postsvc/ports"
)

// newID returns a time-ordered id: ids made later by this process sort after earlier ones,
// which is what newest-first ordering and cursors rely on.
func newID(t testing.TB) string {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatalf("uuid: %v", err)
	}
	return id.String()
}

func mustEmail(t testing.TB, raw string) user.Email {
	t.Helper()
	e, err := user.ParseEmail(raw)
	if err != nil {
		t.Fatalf("ParseEmail(%q): %v", raw, err)
	}
	return e
}

// makeUser builds a valid account without storing it.
func makeUser(t testing.TB, email, name string, role user.Role) *user.User {
	t.Helper()
	u, err := user.New(user.ID(newID(t)), mustEmail(t, email), user.PasswordHash("$argon2id$hash-of-"+email), name, role, time.Now())
	if err != nil {
		t.Fatalf("user.New: %v", err)
	}
	return u
}

// addUser stores a new account and returns it.
func addUser(t *testing.T, b Backend, email, name string, role user.Role) *user.User {
	t.Helper()
	u := makeUser(t, email, name, role)
	if err := b.Repos.Users().Add(t.Context(), u); err != nil {
		t.Fatalf("add user %s: %v", email, err)
	}
	return u
}

func makePost(t testing.TB, author user.ID, text string) *post.Post {
	t.Helper()
	p, err := post.New(post.ID(newID(t)), author, text, time.Now())
	if err != nil {
		t.Fatalf("post.New: %v", err)
	}
	return p
}

func addPost(t *testing.T, b Backend, author user.ID, text string) *post.Post {
	t.Helper()
	p := makePost(t, author, text)
	if err := b.Repos.Posts().Add(t.Context(), p); err != nil {
		t.Fatalf("add post: %v", err)
	}
	return p
}

// addSession stores a new session of u opened at now and returns it with its refresh token.
func addSession(t *testing.T, b Backend, u user.ID, now time.Time, ttl time.Duration) (*session.Session, string) {
	t.Helper()
	s, token, err := session.New(session.ID(newID(t)), u, now, ttl)
	if err != nil {
		t.Fatalf("session.New: %v", err)
	}
	if err := b.Repos.Sessions().Add(t.Context(), s); err != nil {
		t.Fatalf("add session: %v", err)
	}
	return s, token
}

// wantErr fails unless errors.Is(err, want).
func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func noErr(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// sameInstant checks that a stored timestamp came back in UTC and within a millisecond of what
// was written: databases may keep less than nanoseconds, but not less than milliseconds.
func sameInstant(t testing.TB, what string, got, want time.Time) {
	t.Helper()
	if got.Location() != time.UTC {
		t.Errorf("%s: location %v, want UTC", what, got.Location())
	}
	if d := got.Sub(want); d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("%s: got %s, want %s (off by %s)", what, got.Format(time.RFC3339Nano), want.UTC().Format(time.RFC3339Nano), d)
	}
}

func assertSameUser(t testing.TB, got, want *user.User) {
	t.Helper()
	if got == nil {
		t.Fatalf("got nil user, want %s", want.ID())
	}
	if got.ID() != want.ID() || got.Email() != want.Email() || got.PasswordHash() != want.PasswordHash() ||
		got.Name() != want.Name() || got.Role() != want.Role() {
		t.Errorf("user = {%s %s %s %q %s}, want {%s %s %s %q %s}",
			got.ID(), got.Email(), got.PasswordHash(), got.Name(), got.Role(),
			want.ID(), want.Email(), want.PasswordHash(), want.Name(), want.Role())
	}
	sameInstant(t, "created_at", got.CreatedAt(), want.CreatedAt())
	sameInstant(t, "updated_at", got.UpdatedAt(), want.UpdatedAt())
}

func userIDs(us []*user.User) []user.ID {
	out := make([]user.ID, len(us))
	for i, u := range us {
		out[i] = u.ID()
	}
	return out
}

func postIDs(ps []*post.Post) []post.ID {
	out := make([]post.ID, len(ps))
	for i, p := range ps {
		out[i] = p.ID()
	}
	return out
}

// newestFirst returns ids sorted the way the repositories list them.
func newestFirst[S ~[]E, E ~string](ids S) S {
	out := slices.Clone(ids)
	slices.Sort(out)
	slices.Reverse(out)
	return out
}

// listPosts returns one page of an author's posts with no byte budget.
func listPosts(t testing.TB, b Backend, author user.ID, before post.ID, limit int) []*post.Post {
	t.Helper()
	list, err := b.Repos.Posts().ListByAuthor(t.Context(), ports.PostListQuery{Author: author, Before: before, Limit: limit})
	noErr(t, "ListByAuthor", err)
	return list.Posts
}
