package accounts_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/acme/postsvc/application/accounts"
	"github.com/acme/postsvc/domain/identity"
	port "github.com/acme/postsvc/ports/accounts"
	"github.com/acme/postsvc/test/fakes"
)

// principalsFixture resolves one credential whose database read is counted.
type principalsFixture struct {
	board  *fakes.Board
	c      *accounts.Principals
	reads  int
	p      identity.Principal // what the database holds
	err    error
	expiry time.Time
	now    time.Time
}

func newPrincipalsFixture(board *fakes.Board) *principalsFixture {
	f := &principalsFixture{board: board, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	if board == nil {
		f.c = accounts.NewPrincipals(nil, accounts.PrincipalSettings{}) // a nil *fakes.Board is not a nil board
	} else {
		f.c = accounts.NewPrincipals(board, accounts.PrincipalSettings{})
	}
	f.p = identity.Principal{UserID: "u1", Role: identity.RoleUser, Credential: identity.Credential{Kind: identity.CredentialSession, ID: "s1"}, Stamps: "auth=1;posts=4"}
	return f
}

func (f *principalsFixture) resolve(t *testing.T) (identity.Principal, error) {
	t.Helper()
	return f.c.Resolve(t.Context(), "session:s1", f.now, func(context.Context) (identity.Principal, time.Time, error) {
		f.reads++
		return f.p, f.expiry, f.err
	})
}

func (f *principalsFixture) wantReads(t *testing.T, n int, why string) {
	t.Helper()
	if _, err := f.resolve(t); err != nil && f.err == nil {
		t.Fatal(err)
	}
	if f.reads != n {
		t.Fatalf("%s: %d database reads, want %d", why, f.reads, n)
	}
}

func TestPrincipalsServeFromMemoryWhileTheBoardVouches(t *testing.T) {
	f := newPrincipalsFixture(fakes.NewBoard())
	f.wantReads(t, 1, "first request")
	f.wantReads(t, 1, "second request, nothing changed")

	// Another instance's post write: the principal stays, its stamps follow the board.
	f.board.Publish(t.Context(), "u1", "auth=1;posts=5")
	p, err := f.resolve(t)
	if err != nil || f.reads != 1 || p.Stamp("posts") != 5 || p.Role != identity.RoleUser {
		t.Fatalf("after a post write elsewhere: %+v, %v, %d reads; want posts=5 from memory", p, err, f.reads)
	}

	// A revocation anywhere bumps auth: read again, and the database says no.
	f.board.Publish(t.Context(), "u1", "auth=2;posts=5")
	f.err, f.p = errors.New("session revoked"), identity.Principal{}
	if _, err := f.resolve(t); err == nil || f.reads != 2 {
		t.Fatalf("after a revocation: err %v, %d reads; want the database's refusal", err, f.reads)
	}
	if _, err := f.resolve(t); err == nil || f.reads != 3 {
		t.Fatalf("a refused credential must not be kept: err %v, %d reads", err, f.reads)
	}
}

func TestPrincipalsReadTheDatabaseWhenTheBoardCannotVouch(t *testing.T) {
	f := newPrincipalsFixture(fakes.NewBoard())
	f.wantReads(t, 1, "first request")
	f.board.SetDown(true)
	f.wantReads(t, 2, "board down")
	f.wantReads(t, 3, "board still down")
	f.board.SetDown(false)
	// The board lost what was published while down: the next read publishes again.
	f.wantReads(t, 4, "board back, nothing published since")
	f.wantReads(t, 4, "board back and published")
}

func TestPrincipalsStopAtTheCredentialsExpiryAndMaxAge(t *testing.T) {
	f := newPrincipalsFixture(fakes.NewBoard())
	f.expiry = f.now.Add(10 * time.Second)
	f.wantReads(t, 1, "first request")
	f.now = f.now.Add(9 * time.Second)
	f.wantReads(t, 1, "before expiry")
	f.now = f.now.Add(time.Second)
	f.expiry = time.Time{} // the read at expiry finds a credential that does not expire
	f.wantReads(t, 2, "at expiry")
	f.now = f.now.Add(time.Hour / 2 / 60)
	f.wantReads(t, 2, "does not expire")
	f.now = f.now.Add(accounts.DefaultPrincipalMaxAge)
	f.wantReads(t, 3, "older than the maximum age")
}

func TestPrincipalsWithoutABoardAlwaysReadTheDatabase(t *testing.T) {
	f := newPrincipalsFixture(nil)
	f.wantReads(t, 1, "first request")
	f.wantReads(t, 2, "second request")
	if hits, misses := f.c.Stats(); hits != 0 || misses != 2 {
		t.Fatalf("Stats = %d hits, %d misses; want 0, 2", hits, misses)
	}
}

// TestRevocationsReachCachedPrincipals runs the use cases: each revoking call is followed by
// a request with the credential it revoked, which was served from memory just before.
func TestRevocationsReachCachedPrincipals(t *testing.T) {
	admin, e, boss := setup(t)
	auth := e.auth(nil)
	ctx := context.Background()
	a := signup(t, auth, "a@x.io")
	authenticate := func(token string) (identity.Principal, error) { return auth.Authenticate(ctx, token) }
	for range 2 {
		if _, err := authenticate(a.AccessToken); err != nil {
			t.Fatal(err)
		}
	}
	if hits, _ := e.Principals.Stats(); hits == 0 {
		t.Fatal("the second request was not served from memory")
	}
	pa, _ := authenticate(a.AccessToken)
	promote := "admin"
	if _, err := admin.UpdateUser(ctx, boss, string(pa.UserID), port.UserUpdate{Role: &promote}); err != nil {
		t.Fatal(err)
	}
	if p, err := authenticate(a.AccessToken); err != nil || p.Role != identity.RoleAdmin {
		t.Fatalf("after promotion: %+v, %v; want the admin role at once", p, err)
	}
	if err := auth.Logout(ctx, pa, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := authenticate(a.AccessToken); err == nil {
		t.Fatal("a logged-out session still authenticates")
	}
}
