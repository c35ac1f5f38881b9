package accounts_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/acme/postsvc/application/accounts"
	"github.com/acme/postsvc/domain/accounts/user"
	port "github.com/acme/postsvc/ports/accounts"
	"github.com/acme/postsvc/test/fakes/accountsfake"
)

// slowHasher hashes and verifies as the fake does, then runs during (by default, it waits
// out the caller's deadline): a hash that ends after its request's deadline.
type slowHasher struct {
	*accountsfake.Hasher
	during func(ctx context.Context)
}

func (h *slowHasher) Hash(ctx context.Context, client port.ClientKey, plain string) (user.PasswordHash, error) {
	hash, err := h.Hasher.Hash(ctx, client, plain)
	h.during(ctx)
	return hash, err
}

func (h *slowHasher) Verify(ctx context.Context, client port.ClientKey, hash user.PasswordHash, plain string) (bool, error) {
	ok, err := h.Hasher.Verify(ctx, client, hash, plain)
	h.during(ctx)
	return ok, err
}

func waitOutTheDeadline(ctx context.Context) { <-ctx.Done() }

// TestWorkAfterAHashOutlivesTheDeadline: a hash that ends after its request's deadline
// still buys what it was computed for. A flood of signups on a busy machine got 503
// unavailable for checks the hasher had admitted, when the hash ended past the deadline and
// the transaction that followed was refused at once.
func TestWorkAfterAHashOutlivesTheDeadline(t *testing.T) {
	deadline := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	e := newEnv()
	h := &slowHasher{Hasher: e.Hasher, during: waitOutTheDeadline}

	res, err := e.auth(h).Signup(deadline(), port.SignupInput{Email: "late@x.io", Password: "correct horse", ClientAddr: "1.1.1.1"})
	if err != nil {
		t.Fatalf("signup whose hash ended after the deadline: %v", err)
	}
	if _, err := e.users().ByID(context.Background(), res.User.ID()); err != nil {
		t.Fatalf("the account of that signup: %v", err)
	}
	login, err := e.auth(h).Login(deadline(), port.LoginInput{Email: "late@x.io", Password: "correct horse", ClientAddr: "1.1.1.1"})
	if err != nil {
		t.Fatalf("login whose check ended after the deadline: %v", err)
	}
	if _, err := e.auth(nil).Authenticate(context.Background(), login.AccessToken); err != nil {
		t.Fatalf("the session of that login: %v", err)
	}
	admin := accounts.NewAdmin(e.Store, accountsfake.Store{}, h, e.Jobs, e.stamps(), e.Owners, e.Clock, e.IDs)
	if _, err := admin.CreateAccount(deadline(), port.LocalClient, port.NewUserInput{Email: "made@x.io", Password: "correct horse"}); err != nil {
		t.Fatalf("account created by an admin, hashed past the deadline: %v", err)
	}
	// A wrong password found after the deadline is still a counted failure, and answered so.
	_, err = e.auth(h).Login(deadline(), port.LoginInput{Email: "late@x.io", Password: "wrong horse", ClientAddr: "1.1.1.1"})
	if !errors.Is(err, user.ErrInvalidCredentials) || e.Throttle.Attempts("account:late@x.io") != 1 {
		t.Fatalf("wrong password checked after the deadline: %v, %d counted", err, e.Throttle.Attempts("account:late@x.io"))
	}
}

// TestAClientThatLeftDuringAHashCancelsTheRest: the grace is for the request's deadline only;
// a client gone while its password was hashed gets nothing stored.
func TestAClientThatLeftDuringAHashCancelsTheRest(t *testing.T) {
	e := newEnv()
	ctx, leave := context.WithTimeout(context.Background(), time.Hour)
	defer leave()
	h := &slowHasher{Hasher: e.Hasher, during: func(context.Context) { leave() }}
	_, err := e.auth(h).Signup(ctx, port.SignupInput{Email: "gone@x.io", Password: "correct horse", ClientAddr: "1.1.1.1"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("signup whose client left during the hash: %v, want context.Canceled", err)
	}
	if _, err := e.users().ByEmail(context.Background(), mustEmail(t, "gone@x.io")); !errors.Is(err, user.ErrNotFound) {
		t.Fatalf("the account of a signup whose client left: %v, want not found", err)
	}
}
