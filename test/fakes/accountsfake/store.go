// Package accountsfake holds the accounts context's in-memory fakes for use-case tests: its
// repositories (users, sessions, API keys) on a fakes.Store, a password hasher and a token issuer. The repositories pass
// the accounts contract suite (test/contract/accounts), like the real databases.
package accountsfake

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/acme/postsvc/domain/accounts/session"
	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/ports/accounts"
	"github.com/acme/postsvc/test/fakes"
)

const (
	usersTable    = "accounts.users"
	sessionsTable = "accounts.sessions"
)

func init() {
	// Sessions go with their user, as the sessions table's foreign key does.
	fakes.OnIdentityDeleted(func(v *fakes.View, id identity.UserID) {
		sessions := fakes.Table[session.ID, session.Session](v, sessionsTable)
		for sid, s := range sessions {
			if s.UserID() == id {
				delete(sessions, sid)
			}
		}
	})
}

// Store implements accounts.Store on a fakes.Store.
type Store struct{}

var _ accounts.Store = Store{}

// Users is the user repository on tx.
func (Store) Users(tx ports.Scope) accounts.UserRepository { return users{tx} }

// Sessions is the session repository on tx.
func (Store) Sessions(tx ports.Scope) accounts.SessionRepository { return sessions{tx} }

type users struct{ tx ports.Scope }

func usersOf(v *fakes.View) map[identity.UserID]user.User {
	return fakes.Table[identity.UserID, user.User](v, usersTable)
}

func (r users) Add(_ context.Context, u *user.User) error {
	return fakes.Access(r.tx, true, func(v *fakes.View) error {
		all := usersOf(v)
		for _, existing := range all {
			if existing.Email() == u.Email() {
				return user.ErrEmailTaken
			}
		}
		if _, ok := all[u.ID()]; ok {
			return fmt.Errorf("accountsfake: duplicate user id %s", u.ID())
		}
		all[u.ID()] = *u
		fakes.AddIdentity(v, u.ID())
		return nil
	})
}

// ByIDForUpdate is ByID: the fake's units of work already run one at a time.
func (r users) ByIDForUpdate(ctx context.Context, id identity.UserID) (*user.User, error) {
	return r.ByID(ctx, id)
}

func (r users) ByID(_ context.Context, id identity.UserID) (*user.User, error) {
	var out *user.User
	err := fakes.Access(r.tx, false, func(v *fakes.View) error {
		u, ok := usersOf(v)[id]
		if !ok {
			return user.ErrNotFound
		}
		out = &u
		return nil
	})
	return out, err
}

func (r users) ByEmail(_ context.Context, email user.Email) (*user.User, error) {
	var out *user.User
	err := fakes.Access(r.tx, false, func(v *fakes.View) error {
		for _, u := range usersOf(v) {
			if u.Email() == email {
				out = &u
				return nil
			}
		}
		return user.ErrNotFound
	})
	return out, err
}

func (r users) Update(_ context.Context, u *user.User) error {
	return fakes.Access(r.tx, true, func(v *fakes.View) error {
		all := usersOf(v)
		if _, ok := all[u.ID()]; !ok {
			return user.ErrNotFound
		}
		all[u.ID()] = *u
		return nil
	})
}

func (r users) Delete(_ context.Context, id identity.UserID) error {
	return fakes.Access(r.tx, true, func(v *fakes.View) error {
		all := usersOf(v)
		if _, ok := all[id]; !ok {
			return user.ErrNotFound
		}
		delete(all, id)
		fakes.DeleteIdentity(v, id)
		return nil
	})
}

func (r users) Search(_ context.Context, q accounts.UserQuery) ([]*user.User, error) {
	var out []*user.User
	err := fakes.Access(r.tx, false, func(v *fakes.View) error {
		all := usersOf(v)
		needle := strings.ToLower(q.Query)
		ids := slices.Collect(maps.Keys(all))
		slices.Sort(ids)
		slices.Reverse(ids)
		for _, id := range ids {
			if q.Before != "" && id >= q.Before {
				continue
			}
			u := all[id]
			if needle != "" && !strings.Contains(strings.ToLower(u.Email().String()), needle) &&
				!strings.Contains(strings.ToLower(u.Name()), needle) {
				continue
			}
			out = append(out, &u)
			if q.Limit > 0 && len(out) == q.Limit {
				break
			}
		}
		return nil
	})
	return out, err
}

func (r users) CountAdminsForUpdate(_ context.Context) (int, error) {
	n := 0
	err := fakes.Access(r.tx, false, func(v *fakes.View) error {
		for _, u := range usersOf(v) {
			if u.Role().IsAdmin() {
				n++
			}
		}
		return nil
	})
	return n, err
}

type sessions struct{ tx ports.Scope }

func sessionsOf(v *fakes.View) map[session.ID]session.Session {
	return fakes.Table[session.ID, session.Session](v, sessionsTable)
}

func (r sessions) Add(_ context.Context, s *session.Session) error {
	return fakes.Access(r.tx, true, func(v *fakes.View) error {
		if !fakes.IdentityExists(v, s.UserID()) {
			return fmt.Errorf("accountsfake: session user %s: %w", s.UserID(), user.ErrNotFound)
		}
		sessionsOf(v)[s.ID()] = *s
		return nil
	})
}

func (r sessions) ByID(_ context.Context, id session.ID) (*session.Session, error) {
	var out *session.Session
	err := fakes.Access(r.tx, false, func(v *fakes.View) error {
		s, ok := sessionsOf(v)[id]
		if !ok {
			return session.ErrNotFound
		}
		out = &s
		return nil
	})
	return out, err
}

// ByIDForUpdate is ByID: the fake's units of work already run one at a time.
func (r sessions) ByIDForUpdate(ctx context.Context, id session.ID) (*session.Session, error) {
	return r.ByID(ctx, id)
}

func (r sessions) Update(_ context.Context, s *session.Session) error {
	return fakes.Access(r.tx, true, func(v *fakes.View) error {
		all := sessionsOf(v)
		if _, ok := all[s.ID()]; !ok {
			return session.ErrNotFound
		}
		all[s.ID()] = *s
		return nil
	})
}

func (r sessions) RevokeAllForUser(_ context.Context, id identity.UserID, now time.Time) error {
	return fakes.Access(r.tx, true, func(v *fakes.View) error {
		all := sessionsOf(v)
		for sid, s := range all {
			if s.UserID() == id && s.RevokedAt() == nil {
				s.Revoke(now)
				all[sid] = s
			}
		}
		return nil
	})
}

func (r sessions) Principal(_ context.Context, id session.ID, now time.Time) (identity.Principal, error) {
	var out identity.Principal
	err := fakes.Access(r.tx, false, func(v *fakes.View) error {
		s, ok := sessionsOf(v)[id]
		if !ok || !s.Active(now) {
			return session.ErrNotFound
		}
		u, ok := usersOf(v)[s.UserID()]
		if !ok {
			return session.ErrNotFound
		}
		out = identity.Principal{
			UserID: u.ID(), Role: u.Role(),
			Credential: identity.Credential{Kind: identity.CredentialSession, ID: string(s.ID()), ExpiresAt: s.ExpiresAt().UTC().Truncate(time.Microsecond)},
			Stamps:     fakes.StampsOf(v, u.ID()),
		}
		return nil
	})
	return out, err
}
