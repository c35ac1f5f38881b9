package accounts_test

import (
	"context"
	"testing"
	"time"

	"github.com/acme/postsvc/application/accounts"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
	port "github.com/acme/postsvc/ports/accounts"
	"github.com/acme/postsvc/test/fakes"
	"github.com/acme/postsvc/test/fakes/accountsfake"
)

// env is the kernel's fakes plus the accounts context's own.
type env struct {
	*fakes.Env
	Hasher *accountsfake.Hasher
	Tokens *accountsfake.Tokens
	// Owners are the contexts that keep users' data, as the admin use case sees them.
	Owners []ports.UserDataOwner
	// Board is the stamp board every use case publishes to, and Principals the principal
	// cache the authenticators share, as in the service.
	Board      *fakes.Board
	Principals *accounts.Principals
}

func newEnv() *env {
	e := &env{Env: fakes.NewEnv(), Hasher: &accountsfake.Hasher{}, Board: fakes.NewBoard()}
	e.Principals = accounts.NewPrincipals(e.Board, accounts.PrincipalSettings{})
	e.Tokens = &accountsfake.Tokens{Clock: e.Clock, Lifetime: 15 * time.Minute}
	return e
}

// users is the user repository on the pool.
func (e *env) users() port.UserRepository { return accountsfake.Store{}.Users(e.Store.Pool()) }

// sessions is the session repository on the pool.
func (e *env) sessions() port.SessionRepository {
	return accountsfake.Store{}.Sessions(e.Store.Pool())
}

func (e *env) auth(hasher port.PasswordHasher) *accounts.Auth {
	if hasher == nil {
		hasher = e.Hasher
	}
	return accounts.NewAuth(e.Store, accountsfake.Store{}, hasher, e.Tokens, e.Throttle, e.stamps(), e.Principals, e.Clock, e.IDs,
		accounts.AuthSettings{RefreshTokenTTL: 24 * time.Hour})
}

func (e *env) admin() *accounts.Admin {
	return accounts.NewAdmin(e.Store, accountsfake.Store{}, e.Hasher, e.Jobs, e.stamps(), e.Owners, e.Clock, e.IDs)
}

// stamps bumps stamps in the fake store and publishes them on the env's board.
func (e *env) stamps() fakes.Stamps { return fakes.Stamps{Board: e.Board} }

// runCleanups runs the jobs that user deletions enqueued, as a worker would.
func (e *env) runCleanups(t *testing.T, admin *accounts.Admin) int {
	t.Helper()
	n, err := e.RunJobs(context.Background(), map[string]func(context.Context, ports.Job) error{
		accounts.UserCleanupJob: admin.CleanUpDeletedUser,
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// adminPrincipal is an admin's principal with a session credential.
func adminPrincipal(id identity.UserID) identity.Principal {
	return identity.Principal{UserID: id, Role: identity.RoleAdmin, Credential: identity.Credential{Kind: identity.CredentialSession, ID: "s-admin"}}
}
