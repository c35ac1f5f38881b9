// Package accounts is the contract of the accounts context's repositories (users, login
// sessions and personal API keys): run on SQLite, MySQL and the in-memory fake, so they all behave the same.
package accounts

import (
	"testing"
	"time"

	"github.com/acme/postsvc/domain/accounts/session"
	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
	port "github.com/acme/postsvc/ports/accounts"
	"github.com/acme/postsvc/test/contract"
)

// Backend is one implementation under test: the accounts store and the unit of work over the
// same storage.
type Backend struct {
	UoW   ports.UnitOfWork
	Store port.Store
	// Stamps bumps the user's change counters, which the principal reads carry.
	Stamps ports.Stamps
}

// Users is the user repository on the pool.
func (b Backend) Users() port.UserRepository { return b.Store.Users(b.UoW.Pool()) }

// Sessions is the session repository on the pool.
func (b Backend) Sessions() port.SessionRepository { return b.Store.Sessions(b.UoW.Pool()) }

// Tests is the accounts repositories' contract.
func Tests() []contract.Group[Backend] {
	return []contract.Group[Backend]{{Name: "users", Tests: userTests()}, {Name: "sessions", Tests: sessionTests()}, {Name: "api keys", Tests: apiKeyTests()}}
}

// addUser stores a new account and returns it.
func addUser(t *testing.T, b Backend, email, name string, role identity.Role) *user.User {
	t.Helper()
	u := contract.MakeUser(t, email, name, role)
	if err := b.Users().Add(t.Context(), u); err != nil {
		t.Fatalf("add user %s: %v", email, err)
	}
	return u
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
	contract.SameInstant(t, "created_at", got.CreatedAt(), want.CreatedAt())
	contract.SameInstant(t, "updated_at", got.UpdatedAt(), want.UpdatedAt())
}

func userIDs(us []*user.User) []identity.UserID {
	out := make([]identity.UserID, len(us))
	for i, u := range us {
		out[i] = u.ID()
	}
	return out
}

// addSession stores a new session of u opened at now and returns it with its refresh token.
func addSession(t *testing.T, b Backend, u identity.UserID, now time.Time, ttl time.Duration) (*session.Session, string) {
	t.Helper()
	s, token, err := session.New(session.ID(contract.NewID(t)), u, now, ttl)
	if err != nil {
		t.Fatalf("session.New: %v", err)
	}
	if err := b.Sessions().Add(t.Context(), s); err != nil {
		t.Fatalf("add session: %v", err)
	}
	return s, token
}
