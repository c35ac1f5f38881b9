package contract

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports/accounts"
)

// newID returns a time-ordered id: ids made later by this process sort after earlier ones,
// which is what newest-first ordering and cursors rely on.
func NewID(t testing.TB) string {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatalf("uuid: %v", err)
	}
	return id.String()
}

func MustEmail(t testing.TB, raw string) user.Email {
	t.Helper()
	e, err := user.ParseEmail(raw)
	if err != nil {
		t.Fatalf("ParseEmail(%q): %v", raw, err)
	}
	return e
}

// makeUser builds a valid account without storing it.
func MakeUser(t testing.TB, email, name string, role identity.Role) *user.User {
	t.Helper()
	u, err := user.New(identity.UserID(NewID(t)), MustEmail(t, email), user.PasswordHash("$argon2id$hash-of-"+email), name, role, time.Now())
	if err != nil {
		t.Fatalf("user.New: %v", err)
	}
	return u
}

// wantErr fails unless errors.Is(err, want).
func WantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func NoErr(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// sameInstant checks that a stored timestamp came back in UTC and within a millisecond of what
// was written: databases may keep less than nanoseconds, but not less than milliseconds.
func SameInstant(t testing.TB, what string, got, want time.Time) {
	t.Helper()
	if got.Location() != time.UTC {
		t.Errorf("%s: location %v, want UTC", what, got.Location())
	}
	if d := got.Sub(want); d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("%s: got %s, want %s (off by %s)", what, got.Format(time.RFC3339Nano), want.UTC().Format(time.RFC3339Nano), d)
	}
}

// newestFirst returns ids sorted the way the repositories list them.
func NewestFirst[S ~[]E, E ~string](ids S) S {
	out := slices.Clone(ids)
	slices.Sort(out)
	slices.Reverse(out)
	return out
}

// Users makes and deletes accounts through the accounts context's own repository, as the
// service does, for the suites of contexts that only see user ids: it returns the NewUser and
// DeleteUser of their backends.
func Users(repo accounts.UserRepository) (func(t *testing.T) identity.UserID, func(t *testing.T, id identity.UserID)) {
	add := func(t *testing.T) identity.UserID {
		t.Helper()
		id := identity.UserID(NewID(t))
		u, err := user.New(id, MustEmail(t, string(id)+"@x.io"), "hash", "", identity.RoleUser, time.Now())
		NoErr(t, "user.New", err)
		NoErr(t, "add user", repo.Add(t.Context(), u))
		return id
	}
	del := func(t *testing.T, id identity.UserID) {
		t.Helper()
		NoErr(t, "delete user", repo.Delete(t.Context(), id))
	}
	return add, del
}
