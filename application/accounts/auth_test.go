package accounts_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/postsvc/application/accounts"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/accounts/session"
	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/domain/identity"
	port "github.com/acme/postsvc/ports/accounts"
	"github.com/acme/postsvc/test/fakes/accountsfake"
)

func newService(t *testing.T) (*accounts.Auth, *env) {
	t.Helper()
	e := newEnv()
	return e.auth(nil), e
}

func signup(t *testing.T, svc *accounts.Auth, email string) port.AuthResult {
	t.Helper()
	res, err := svc.Signup(context.Background(), port.SignupInput{Email: email, Password: "correct horse"})
	if err != nil {
		t.Fatalf("signup %s: %v", email, err)
	}
	return res
}

func TestSignupValidatesEveryField(t *testing.T) {
	svc, env := newService(t)
	_, err := svc.Signup(context.Background(), port.SignupInput{Email: "nope", Password: "short", Name: string(make([]rune, 101))})
	var ve *domain.ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) != 3 {
		t.Fatalf("want three field errors, got %v", err)
	}
	if env.Hasher.Hashes.Load() != 0 {
		t.Fatal("invalid input must not be hashed")
	}
}

// TestNewAccountsNeedAShortLocalPartLoginDoesNot: signup and an admin's create refuse an
// address with more than 64 bytes before its "@"; an account stored with one before that
// limit still logs in.
func TestNewAccountsNeedAShortLocalPartLoginDoesNot(t *testing.T) {
	svc, env := newService(t)
	ctx := context.Background()
	long := strings.Repeat("a", 65) + "@x.io"
	_, err := svc.Signup(ctx, port.SignupInput{Email: long, Password: "correct horse"})
	var ve *domain.ValidationError
	if !errors.As(err, &ve) || ve.Fields[0].Field != "email" {
		t.Fatalf("signup with a 65-byte local part: %v, want a validation error on email", err)
	}
	admin := env.admin()
	root := adminPrincipal("root")
	if _, err := admin.CreateUser(ctx, root, port.NewUserInput{Email: long, Password: "correct horse"}); !errors.As(err, &ve) {
		t.Fatalf("admin create with a 65-byte local part: %v, want a validation error", err)
	}
	if env.Hasher.Hashes.Load() != 0 {
		t.Fatal("an address refused for its length must not be hashed")
	}

	email, err := user.ParseEmail(long)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := env.Hasher.Hash(ctx, port.LocalClient, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	old, err := user.New("u-old", email, hash, "", identity.RoleUser, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := env.users().Add(ctx, old); err != nil {
		t.Fatal(err)
	}
	res, err := svc.Login(ctx, port.LoginInput{Email: strings.ToUpper(long), Password: "correct horse", ClientAddr: "1.1.1.1"})
	if err != nil || res.User.ID() != "u-old" {
		t.Fatalf("login of an account stored before the limit: %v", err)
	}
}

func TestSignupCreatesUserRoleAndSession(t *testing.T) {
	svc, _ := newService(t)
	res := signup(t, svc, " Ada@Example.io ")
	if res.User.Email().String() != "ada@example.io" || res.User.Role() != identity.RoleUser {
		t.Fatalf("user = %v %v", res.User.Email(), res.User.Role())
	}
	if res.AccessToken == "" || res.RefreshToken == "" || res.ExpiresInSeconds != 900 {
		t.Fatalf("session = %+v", res)
	}
	p, err := svc.Authenticate(context.Background(), res.AccessToken)
	if err != nil || p.UserID != res.User.ID() || p.Role != identity.RoleUser {
		t.Fatalf("authenticate: %+v, %v", p, err)
	}
	if _, err := svc.Signup(context.Background(), port.SignupInput{Email: "ADA@example.io", Password: "another one"}); !errors.Is(err, user.ErrEmailTaken) {
		t.Fatalf("duplicate email in another case: got %v", err)
	}
}

// TestSignupIsThrottledPerAddress: every admitted signup counts, a taken email included,
// because each costs a hash; invalid input is refused before hashing and does not count.
func TestSignupIsThrottledPerAddress(t *testing.T) {
	svc, env := newService(t) // the fake throttle admits 5 per key
	ctx := context.Background()
	in := func(email, addr string) port.SignupInput {
		return port.SignupInput{Email: email, Password: "correct horse", ClientAddr: addr}
	}
	for range 3 {
		if _, err := svc.Signup(ctx, port.SignupInput{Email: "not an email", Password: "correct horse", ClientAddr: "1.1.1.1"}); err == nil {
			t.Fatal("invalid signup accepted")
		}
	}
	for i := range 4 {
		if _, err := svc.Signup(ctx, in(fmt.Sprintf("u%d@x.io", i), "1.1.1.1")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.Signup(ctx, in("u0@x.io", "1.1.1.1")); !errors.Is(err, user.ErrEmailTaken) {
		t.Fatalf("duplicate: got %v", err)
	}
	hashes := env.Hasher.Hashes.Load()
	_, err := svc.Signup(ctx, in("u9@x.io", "1.1.1.1"))
	var te *domain.ThrottledError
	if !errors.As(err, &te) {
		t.Fatalf("sixth signup from one address: got %v, want throttled", err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "Too many signups from this address; retry after ") {
		t.Fatalf("throttled signup says %q, want it to name signups", msg)
	}
	if env.Hasher.Hashes.Load() != hashes {
		t.Fatal("a throttled signup was hashed")
	}
	if env.Throttle.Attempts("signup:1.1.1.1") != 5 {
		t.Fatalf("signup:1.1.1.1 holds %d attempts, want 5", env.Throttle.Attempts("signup:1.1.1.1"))
	}
	if _, err := svc.Signup(ctx, in("u9@x.io", "2.2.2.2")); err != nil {
		t.Fatalf("another address was throttled: %v", err)
	}
}

func TestLoginSameErrorAndWorkForUnknownEmailAndWrongPassword(t *testing.T) {
	svc, env := newService(t)
	signup(t, svc, "a@x.io")
	ctx := context.Background()
	before := env.Hasher.Verifies.Load()
	_, errWrong := svc.Login(ctx, port.LoginInput{Email: "a@x.io", Password: "wrong password", ClientAddr: "1.1.1.1"})
	afterWrong := env.Hasher.Verifies.Load()
	_, errUnknown := svc.Login(ctx, port.LoginInput{Email: "nobody@x.io", Password: "wrong password", ClientAddr: "1.1.1.1"})
	afterUnknown := env.Hasher.Verifies.Load()
	if !errors.Is(errWrong, user.ErrInvalidCredentials) || !errors.Is(errUnknown, user.ErrInvalidCredentials) {
		t.Fatalf("errors: %v / %v", errWrong, errUnknown)
	}
	if afterWrong-before != 1 || afterUnknown-afterWrong != 1 {
		t.Fatalf("each failure must verify one hash: wrong=%d unknown=%d", afterWrong-before, afterUnknown-afterWrong)
	}
	res, err := svc.Login(ctx, port.LoginInput{Email: "A@X.IO", Password: "correct horse", ClientAddr: "1.1.1.1"})
	if err != nil || res.User.Email().String() != "a@x.io" {
		t.Fatalf("login: %v", err)
	}
}

func TestLoginThrottlesAndReportsOutagesAsOutages(t *testing.T) {
	svc, env := newService(t)
	signup(t, svc, "a@x.io")
	ctx := context.Background()
	for range 5 {
		_, _ = svc.Login(ctx, port.LoginInput{Email: "a@x.io", Password: "bad password", ClientAddr: "9.9.9.9"})
	}
	_, err := svc.Login(ctx, port.LoginInput{Email: "a@x.io", Password: "correct horse", ClientAddr: "8.8.8.8"})
	var te *domain.ThrottledError
	if !errors.As(err, &te) {
		t.Fatalf("sixth attempt: got %v, want throttled", err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "Too many failed logins for this account or address; retry after ") {
		t.Fatalf("throttled login says %q, want it to name failed logins", msg)
	}
	if env.Throttle.Attempts("addr:9.9.9.9") != 5 || env.Throttle.Attempts("account:a@x.io") != 5 {
		t.Fatal("failures must be recorded per account and per address")
	}
	env.Throttle.Reset(ctx, "account:a@x.io")
	env.Store.FailNext(domain.ErrUnavailable)
	_, err = svc.Login(ctx, port.LoginInput{Email: "a@x.io", Password: "correct horse", ClientAddr: "8.8.8.8"})
	if !errors.Is(err, domain.ErrUnavailable) || errors.Is(err, user.ErrInvalidCredentials) {
		t.Fatalf("database outage: got %v, want ErrUnavailable", err)
	}
	if env.Throttle.Attempts("account:a@x.io") != 0 || env.Throttle.Attempts("addr:8.8.8.8") != 0 {
		t.Fatal("an outage must not count as a failed guess")
	}
}

// deletingHasher verifies as the fake does and then, the first time, runs del: an account
// deleted by an admin while a login checked its password.
type deletingHasher struct {
	*accountsfake.Hasher
	once sync.Once
	del  func()
}

func (h *deletingHasher) Verify(ctx context.Context, client port.ClientKey, hash user.PasswordHash, plain string) (bool, error) {
	ok, err := h.Hasher.Verify(ctx, client, hash, plain)
	h.once.Do(h.del)
	return ok, err
}

// TestLoginOfAnAccountDeletedMeanwhileIsInvalidCredentials: the right password of an account
// deleted while the login checked it gets what an unknown email gets, 401 invalid_credentials.
// An outside probe (logins racing DELETE /admin/users/{id}) saw 404 user_not_found on both
// databases: an answer login does not have, which also told anyone the account had existed.
func TestLoginOfAnAccountDeletedMeanwhileIsInvalidCredentials(t *testing.T) {
	e := newEnv()
	ctx := context.Background()
	res := signup(t, e.auth(nil), "gone@x.io")
	h := &deletingHasher{Hasher: e.Hasher, del: func() {
		if err := e.users().Delete(ctx, res.User.ID()); err != nil {
			t.Error(err)
		}
	}}
	_, err := e.auth(h).Login(ctx, port.LoginInput{Email: "gone@x.io", Password: "correct horse", ClientAddr: "1.1.1.1"})
	if !errors.Is(err, user.ErrInvalidCredentials) {
		t.Fatalf("login of an account deleted during its password check: %v, want invalid credentials", err)
	}
}

// TestLoginSuccessKeepsTheAddressFailures checks the two halves of what a success gives back:
// the account's whole budget, and only its own attempt to the address, whose earlier failures
// stay counted.
func TestLoginSuccessKeepsTheAddressFailures(t *testing.T) {
	svc, env := newService(t)
	signup(t, svc, "a@x.io")
	signup(t, svc, "b@x.io")
	ctx := context.Background()
	for range 3 {
		_, _ = svc.Login(ctx, port.LoginInput{Email: "a@x.io", Password: "bad password", ClientAddr: "9.9.9.9"})
	}
	if _, err := svc.Login(ctx, port.LoginInput{Email: "a@x.io", Password: "correct horse", ClientAddr: "9.9.9.9"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Login(ctx, port.LoginInput{Email: "b@x.io", Password: "correct horse", ClientAddr: "9.9.9.9"}); err != nil {
		t.Fatal(err)
	}
	if n := env.Throttle.Attempts("account:a@x.io"); n != 0 {
		t.Fatalf("account holds %d attempts after a success, want 0", n)
	}
	if n := env.Throttle.Attempts("addr:9.9.9.9"); n != 3 {
		t.Fatalf("address holds %d attempts after 3 failures and 2 successes, want 3", n)
	}
}

func TestRefreshRotatesAndReuseRevokesTheSession(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	first := signup(t, svc, "a@x.io")
	second, err := svc.Refresh(ctx, first.RefreshToken)
	if err != nil || second.RefreshToken == first.RefreshToken {
		t.Fatalf("refresh: %v", err)
	}
	if _, err := svc.Refresh(ctx, first.RefreshToken); !errors.Is(err, session.ErrInvalidRefreshToken) {
		t.Fatalf("reuse: got %v", err)
	}
	// Reuse revoked the whole session: the newest refresh token and the access tokens fail.
	if _, err := svc.Refresh(ctx, second.RefreshToken); !errors.Is(err, session.ErrInvalidRefreshToken) {
		t.Fatalf("descendant after reuse: got %v", err)
	}
	if _, err := svc.Authenticate(ctx, second.AccessToken); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatalf("access token after reuse: got %v", err)
	}
}

// TestExpiresInNeverOutlastsTheSession: a session lasts RefreshTokenTTL (24 h here) and a
// refresh does not extend it, so an access token issued 5 minutes before its end is announced
// with those 5 minutes, not the token's 15, and stops working when the session ends. It was
// announced with 15, so a client that planned its refresh from expires_in met a 401 first.
func TestExpiresInNeverOutlastsTheSession(t *testing.T) {
	svc, env := newService(t)
	ctx := context.Background()
	first := signup(t, svc, "a@x.io")
	if first.ExpiresInSeconds != 15*60 {
		t.Fatalf("expires_in at signup = %d, want the token's lifetime, 900", first.ExpiresInSeconds)
	}
	env.Clock.Advance(24*time.Hour - 5*time.Minute)
	late, err := svc.Refresh(ctx, first.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if late.ExpiresInSeconds != 5*60 {
		t.Fatalf("expires_in 5 minutes before the session ends = %d, want 300", late.ExpiresInSeconds)
	}
	env.Clock.Advance(5*time.Minute + time.Second)
	if _, err := svc.Authenticate(ctx, late.AccessToken); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatalf("access token after its session ended: %v, want unauthenticated", err)
	}
}

func TestLogoutKillsAccessAndRefreshAtOnce(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	res := signup(t, svc, "a@x.io")
	other, err := svc.Login(ctx, port.LoginInput{Email: "a@x.io", Password: "correct horse", ClientAddr: "1.1.1.1"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.Authenticate(ctx, res.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Logout(ctx, p, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticate(ctx, res.AccessToken); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatalf("access token after logout: %v", err)
	}
	if _, err := svc.Refresh(ctx, res.RefreshToken); !errors.Is(err, session.ErrInvalidRefreshToken) {
		t.Fatalf("refresh token after logout: %v", err)
	}
	if _, err := svc.Authenticate(ctx, other.AccessToken); err != nil {
		t.Fatalf("another session of the same user must survive: %v", err)
	}
}

// TestLogoutRevokesAnotherSessionOnlyForOneOfItsTokens: a refresh token of another of the
// caller's sessions in the logout body ends that session too, but a forgery that only names
// it (the session id is the "sid" of every access token) does not, as Refresh refuses such a
// forgery without touching the session. Before, Logout revoked whatever session the body's
// first segment named.
func TestLogoutRevokesAnotherSessionOnlyForOneOfItsTokens(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	caller := signup(t, svc, "a@x.io")
	login := func() port.AuthResult {
		t.Helper()
		res, err := svc.Login(ctx, port.LoginInput{Email: "a@x.io", Password: "correct horse", ClientAddr: "1.1.1.1"})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	target := login()
	sid, _, _ := strings.Cut(target.RefreshToken, ".")
	secret := strings.Repeat("A", 43)
	for name, forged := range map[string]string{
		"another family":           sid + "." + strings.Repeat("F", 22) + "." + secret,
		"the family-less form":     sid + "." + secret,
		"an empty family":          sid + ".." + secret,
		"the family of the caller": sid + "." + strings.Split(caller.RefreshToken, ".")[1] + "." + secret,
	} {
		p, err := svc.Authenticate(ctx, caller.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Logout(ctx, p, forged); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := svc.Authenticate(ctx, target.AccessToken); err != nil {
			t.Fatalf("a forged refresh token (%s) in a logout revoked the session it names: %v", name, err)
		}
		caller = login()
	}
	// One of the session's own tokens, even a retired one, proves the caller holds it.
	next, err := svc.Refresh(ctx, target.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.Authenticate(ctx, caller.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Logout(ctx, p, target.RefreshToken); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticate(ctx, next.AccessToken); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatalf("a logout with a retired token of another own session left it alive: %v", err)
	}
}

func TestAuthenticateRejectsExpiredTokensAndDeletedUsers(t *testing.T) {
	svc, env := newService(t)
	ctx := context.Background()
	res := signup(t, svc, "a@x.io")
	env.Clock.Advance(16 * time.Minute)
	if _, err := svc.Authenticate(ctx, res.AccessToken); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatalf("expired: %v", err)
	}
	fresh, err := svc.Refresh(ctx, res.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.users().Delete(ctx, res.User.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticate(ctx, fresh.AccessToken); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatalf("deleted user: %v", err)
	}
}

func TestUpdateMeValidatesAndPersists(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	res := signup(t, svc, "a@x.io")
	p, _ := svc.Authenticate(ctx, res.AccessToken)
	long := string(make([]byte, 101))
	if _, err := svc.UpdateMe(ctx, p, port.ProfileUpdate{Name: &long}); err == nil {
		t.Fatal("invalid name accepted")
	}
	name := "  Ada Lovelace "
	u, err := svc.UpdateMe(ctx, p, port.ProfileUpdate{Name: &name})
	if err != nil || u.Name() != "Ada Lovelace" {
		t.Fatalf("update: %v %q", err, u.Name())
	}
	me, err := svc.Me(ctx, p)
	if err != nil || me.Name() != "Ada Lovelace" {
		t.Fatalf("me: %v %q", err, me.Name())
	}
}

// gatedHasher holds every Verify until release is closed, so that a test can have many
// logins in flight at once, all past the throttle and none finished.
type gatedHasher struct {
	*accountsfake.Hasher
	entered atomic.Int64
	release chan struct{}
}

func (g *gatedHasher) Verify(ctx context.Context, client port.ClientKey, hash user.PasswordHash, plain string) (bool, error) {
	g.entered.Add(1)
	<-g.release
	return g.Hasher.Verify(ctx, client, hash, plain)
}

// TestConcurrentWrongPasswordsTestNoMoreThanTheLimit sends many wrong passwords for one
// account at once, each from its own address, and holds every password check until all of
// them have either reached the hasher or been answered. Only the account's budget (5 with
// the fake throttle) may reach the hasher; a throttle checked before hashing and charged after
// would let all of them through.
func TestConcurrentWrongPasswordsTestNoMoreThanTheLimit(t *testing.T) {
	env := newEnv()
	hasher := &gatedHasher{Hasher: env.Hasher, release: make(chan struct{})}
	svc := env.auth(hasher)
	signup(t, svc, "victim@x.io")

	const attempts = 50
	var answered, throttled, invalid atomic.Int64
	var wg sync.WaitGroup
	for i := range attempts {
		wg.Go(func() {
			_, err := svc.Login(context.Background(), port.LoginInput{
				Email: "victim@x.io", Password: fmt.Sprintf("guess number %d", i), ClientAddr: fmt.Sprintf("198.51.100.%d", i),
			})
			var te *domain.ThrottledError
			switch {
			case errors.As(err, &te):
				throttled.Add(1)
			case errors.Is(err, user.ErrInvalidCredentials):
				invalid.Add(1)
			default:
				t.Errorf("login: %v", err)
			}
			answered.Add(1)
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for answered.Load()+hasher.entered.Load() < attempts && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	inHasher := hasher.entered.Load()
	close(hasher.release)
	wg.Wait()
	if inHasher > 5 {
		t.Fatalf("%d of %d concurrent guesses reached the hasher, the limit is 5", inHasher, attempts)
	}
	if invalid.Load() != 5 || throttled.Load() != attempts-5 {
		t.Fatalf("%d invalid credentials and %d throttled, want 5 and %d", invalid.Load(), throttled.Load(), attempts-5)
	}
}

// TestEveryHashRunsInTheCallersShare: signup, login and the dummy verification of an unknown
// email all hash for the caller's address, so the hasher can keep one address from taking
// every slot.
func TestEveryHashRunsInTheCallersShare(t *testing.T) {
	svc, env := newService(t)
	ctx := context.Background()
	if _, err := svc.Signup(ctx, port.SignupInput{Email: "a@x.io", Password: "correct horse", ClientAddr: "192.0.2.1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Login(ctx, port.LoginInput{Email: "a@x.io", Password: "correct horse", ClientAddr: "192.0.2.2"}); err != nil {
		t.Fatal(err)
	}
	// The first unknown email also makes the dummy hash.
	if _, err := svc.Login(ctx, port.LoginInput{Email: "nobody@x.io", Password: "wrong password", ClientAddr: "192.0.2.3"}); !errors.Is(err, user.ErrInvalidCredentials) {
		t.Fatal(err)
	}
	if _, err := svc.Login(ctx, port.LoginInput{Email: "not an email", Password: "wrong password", ClientAddr: "192.0.2.4"}); !errors.Is(err, user.ErrInvalidCredentials) {
		t.Fatal(err)
	}
	got := env.Hasher.Clients()
	want := []port.ClientKey{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.3", "192.0.2.4"}
	if !slices.Equal(got, want) {
		t.Fatalf("hashed for %q, want %q", got, want)
	}
}

// TestShedChecksAreNotCounted: when the hasher sheds a check (overloaded), no password was
// tested and no account created, so neither a login nor a signup keeps its attempt; the
// caller gets the overload as it is, to retry shortly. The throttle is not even asked: the
// hasher says it is overloaded first, so shedding costs no round trip to a shared throttle.
func TestShedChecksAreNotCounted(t *testing.T) {
	svc, env := newService(t)
	signup(t, svc, "a@x.io")
	ctx := context.Background()
	env.Hasher.Err = fmt.Errorf("test: %w", domain.ErrOverloaded)
	calls := env.Throttle.Calls.Load()
	defer func() {
		if n := env.Throttle.Calls.Load() - calls; n != 0 {
			t.Errorf("the throttle was called %d times for checks the hasher shed", n)
		}
	}()
	for range 10 {
		_, err := svc.Login(ctx, port.LoginInput{Email: "a@x.io", Password: "bad password", ClientAddr: "9.9.9.9"})
		if !errors.Is(err, domain.ErrOverloaded) {
			t.Fatalf("login while shed: got %v, want ErrOverloaded", err)
		}
		_, err = svc.Signup(ctx, port.SignupInput{Email: "b@x.io", Password: "correct horse", ClientAddr: "9.9.9.9"})
		if !errors.Is(err, domain.ErrOverloaded) {
			t.Fatalf("signup while shed: got %v, want ErrOverloaded", err)
		}
	}
	for _, key := range []string{"account:a@x.io", "addr:9.9.9.9", "signup:9.9.9.9"} {
		if n := env.Throttle.Attempts(key); n != 0 {
			t.Errorf("%s holds %d attempts after only shed checks", key, n)
		}
	}
}

// TestReservedPlacesAreGivenBack: signup and login reserve the hasher's place before the
// throttle and the user lookup; whatever ends the request (a success, a failure, the
// throttle's refusal, invalid input), no place stays held for a check that will not come.
func TestReservedPlacesAreGivenBack(t *testing.T) {
	svc, env := newService(t) // the fake throttle admits 5 per key
	ctx := context.Background()
	signup(t, svc, "a@x.io")
	if _, err := svc.Login(ctx, port.LoginInput{Email: "a@x.io", Password: "correct horse", ClientAddr: "8.8.8.8"}); err != nil {
		t.Fatal(err)
	}
	for range 6 { // the sixth is refused by the throttle, after its place was reserved
		_, _ = svc.Login(ctx, port.LoginInput{Email: "a@x.io", Password: "bad password", ClientAddr: "9.9.9.9"})
	}
	_, err := svc.Login(ctx, port.LoginInput{Email: "a@x.io", Password: "bad password", ClientAddr: "9.9.9.9"})
	var te *domain.ThrottledError
	if !errors.As(err, &te) {
		t.Fatalf("login past the budget: got %v, want throttled", err)
	}
	for i := range 7 {
		_, _ = svc.Signup(ctx, port.SignupInput{Email: fmt.Sprintf("s%d@x.io", i), Password: "correct horse", ClientAddr: "7.7.7.7"})
	}
	if n := env.Hasher.Held(); n != 0 {
		t.Fatalf("%d places stay held after every request ended", n)
	}
}

// blockingFirstHasher holds the hashes of one client until release is closed and lets every
// other client through, counting what reaches it.
type blockingFirstHasher struct {
	*accountsfake.Hasher
	slow    port.ClientKey
	held    chan struct{} // closed when the slow client's hash is being held
	release chan struct{}
	once    sync.Once
}

func (b *blockingFirstHasher) Hash(ctx context.Context, client port.ClientKey, plain string) (user.PasswordHash, error) {
	if client == b.slow {
		b.once.Do(func() { close(b.held) })
		<-b.release
	}
	return b.Hasher.Hash(ctx, client, plain)
}

// TestUnknownEmailsDoNotQueueBehindOneDummyHash: while the first unknown-email login waits
// for the hasher to make the dummy hash, another client's unknown-email login goes to the
// hasher itself (its own share of the fair queue) instead of waiting behind the first one.
func TestUnknownEmailsDoNotQueueBehindOneDummyHash(t *testing.T) {
	env := newEnv()
	hasher := &blockingFirstHasher{Hasher: env.Hasher, slow: "192.0.2.1", held: make(chan struct{}), release: make(chan struct{})}
	svc := env.auth(hasher)
	ctx := context.Background()
	first := make(chan error, 1)
	go func() {
		_, err := svc.Login(ctx, port.LoginInput{Email: "nobody@x.io", Password: "wrong password", ClientAddr: "192.0.2.1"})
		first <- err
	}()
	<-hasher.held
	second := make(chan error, 1)
	go func() {
		_, err := svc.Login(ctx, port.LoginInput{Email: "nobody-else@x.io", Password: "wrong password", ClientAddr: "192.0.2.2"})
		second <- err
	}()
	select {
	case err := <-second:
		if !errors.Is(err, user.ErrInvalidCredentials) {
			t.Fatalf("second login: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("an unknown-email login waited for another client's dummy hash")
	}
	close(hasher.release)
	if err := <-first; !errors.Is(err, user.ErrInvalidCredentials) {
		t.Fatalf("first login: %v", err)
	}
	// Once made, the dummy is kept: later unknown emails only verify.
	hashes := env.Hasher.Hashes.Load()
	if _, err := svc.Login(ctx, port.LoginInput{Email: "third@x.io", Password: "wrong password", ClientAddr: "192.0.2.3"}); !errors.Is(err, user.ErrInvalidCredentials) {
		t.Fatal(err)
	}
	if env.Hasher.Hashes.Load() != hashes {
		t.Fatal("the dummy hash was made again")
	}
}
