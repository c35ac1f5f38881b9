// Package accounts is the accounts context's use cases: signup, login, refresh, logout and
// authentication of every request (Auth), and the user directory for administrators (Admin).
package accounts

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/accounts/session"
	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/ports/accounts"
)

// AuthSettings are the use case's tunables, filled from configuration by the composition root.
type AuthSettings struct {
	// RefreshTokenTTL is how long a session lives from login; refreshing does not extend it,
	// so a stolen refresh token is useful for a bounded time.
	RefreshTokenTTL time.Duration
}

// Auth implements accounts.AuthService.
type Auth struct {
	uow      ports.UnitOfWork
	store    accounts.Store
	hasher   accounts.PasswordHasher
	tokens   accounts.TokenIssuer
	throttle ports.AttemptThrottle
	stamps   ports.Stamps
	// principals keeps the principals of access tokens in memory; see Principals.
	principals *Principals
	clock      ports.Clock
	ids        ports.IDGenerator
	settings   AuthSettings

	// dummyHash is verified against when an email is unknown, so that a login for a missing
	// account costs the same hashing time as a wrong password and timing tells nothing. It is
	// made by the first such login and kept.
	dummyHash atomic.Pointer[user.PasswordHash]
}

var _ accounts.AuthService = (*Auth)(nil)

// NewAuth builds the accounts use case.
func NewAuth(uow ports.UnitOfWork, store accounts.Store, hasher accounts.PasswordHasher, tokens accounts.TokenIssuer,
	throttle ports.AttemptThrottle, stamps ports.Stamps, principals *Principals, clock ports.Clock, ids ports.IDGenerator,
	settings AuthSettings,
) *Auth {
	return &Auth{
		uow: uow, store: store, hasher: hasher, tokens: tokens, throttle: throttle, stamps: stamps, principals: principals,
		clock: clock, ids: ids, settings: settings,
	}
}

// Signup creates a user account and opens its first session. Signups are throttled per client
// address: each one costs a password hash, and without a limit one client could keep the
// hasher busy for everyone.
func (s *Auth) Signup(ctx context.Context, in accounts.SignupInput) (accounts.AuthResult, error) {
	var v domain.Validator
	email, err := user.ParseNewEmail(in.Email)
	v.Check(err)
	v.Check(user.ValidatePassword(in.Password))
	name, err := user.ParseName(in.Name)
	v.Check(err)
	if err := v.Err(); err != nil {
		// Invalid input is answered without hashing, so it is not counted either.
		return accounts.AuthResult{}, err
	}
	// The hash's place is reserved before the throttle is asked: a check the hasher sheds is
	// refused at once, with nothing spent outside this process, and one it admits is not shed
	// after the throttle's round trips (a shared throttle's round trips took refusals past
	// 100 ms on a saturated machine, when a burst passed a look that reserved nothing).
	client := accounts.ClientKey(in.ClientAddr)
	release, err := s.hasher.Reserve(ctx, client)
	if err != nil {
		return accounts.AuthResult{}, err
	}
	defer release()
	// The signup counts from here, whatever happens next (a taken email included), except
	// when nothing was hashed.
	key := signupKey(in.ClientAddr)
	if err := s.throttle.Admit(ctx, key); err != nil {
		return accounts.AuthResult{}, domain.Throttled(err, "signups from this address")
	}
	// Hashing is slow and memory-hard: it happens before the transaction opens.
	hash, err := s.hasher.Hash(ctx, client, in.Password)
	if err != nil {
		s.throttle.Refund(ctx, key)
		return accounts.AuthResult{}, err
	}
	ctx, cancel := afterHashing(ctx)
	defer cancel()
	now := s.clock.Now()
	u, err := user.New(identity.UserID(s.ids.NewID()), email, hash, name, identity.RoleUser, now)
	if err != nil {
		return accounts.AuthResult{}, err
	}
	sess, refresh, err := session.New(session.ID(s.ids.NewID()), u.ID(), now, s.settings.RefreshTokenTTL)
	if err != nil {
		return accounts.AuthResult{}, err
	}
	err = s.uow.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		if err := s.store.Users(tx).Add(ctx, u); err != nil {
			return err
		}
		return s.store.Sessions(tx).Add(ctx, sess)
	})
	if err != nil {
		return accounts.AuthResult{}, err
	}
	return s.result(u, sess.ID(), refresh, sess.ExpiresAt())
}

// Login checks a password and opens a session. Unknown emails and wrong passwords get the
// same error after the same hashing work; failures are throttled per account and per address.
//
// An attempt is counted when it is admitted, before the password is checked, so that however
// many guesses arrive at once no more than the budget are tested. Only a failure keeps its
// count: an attempt that tested nothing (shed, cancelled, the database unreachable) is given
// back, and so is a success.
func (s *Auth) Login(ctx context.Context, in accounts.LoginInput) (accounts.AuthResult, error) {
	// As for a signup, the check's place is reserved before the throttle and the user lookup.
	client := accounts.ClientKey(in.ClientAddr)
	release, err := s.hasher.Reserve(ctx, client)
	if err != nil {
		return accounts.AuthResult{}, err
	}
	defer release()
	keys := throttleKeys(in.Email, in.ClientAddr)
	if err := s.throttle.Admit(ctx, keys...); err != nil {
		return accounts.AuthResult{}, domain.Throttled(err, "failed logins for this account or address")
	}
	u, err := s.checkPassword(ctx, client, in.Email, in.Password)
	ctx, cancel := afterHashing(ctx)
	defer cancel()
	if errors.Is(err, user.ErrInvalidCredentials) {
		return accounts.AuthResult{}, err
	}
	if err != nil {
		// An outage is not a guess: it must not lock the account's owner out.
		s.throttle.Refund(ctx, keys...)
		return accounts.AuthResult{}, err
	}
	// A success clears the account's failures. The address only gets back the attempt this
	// login took, never its earlier failures: otherwise an attacker could reset its own
	// address budget by logging into an account it owns.
	s.throttle.Reset(ctx, keys[0])
	s.throttle.Refund(ctx, keys[1])
	sess, refresh, err := session.New(session.ID(s.ids.NewID()), u.ID(), s.clock.Now(), s.settings.RefreshTokenTTL)
	if err != nil {
		return accounts.AuthResult{}, err
	}
	err = s.uow.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		return s.store.Sessions(tx).Add(ctx, sess)
	})
	if errors.Is(err, user.ErrNotFound) {
		// The account was deleted after its password was checked: it is now an unknown
		// email, answered as such (404 user_not_found said, to anyone, that it had existed).
		return accounts.AuthResult{}, user.ErrInvalidCredentials
	}
	if err != nil {
		return accounts.AuthResult{}, err
	}
	return s.result(u, sess.ID(), refresh, sess.ExpiresAt())
}

// checkPassword returns the account when email and password match, user.ErrInvalidCredentials
// when they do not, and any infrastructure error as it is: an outage is never reported as
// bad credentials. Every hash it computes, the dummy one included, is client's.
func (s *Auth) checkPassword(ctx context.Context, client accounts.ClientKey, rawEmail, password string) (*user.User, error) {
	if len(password) > user.MaxPasswordBytes || password == "" {
		// No account can have such a password; nothing secret is learned from rejecting it early.
		return nil, user.ErrInvalidCredentials
	}
	email, err := user.ParseEmail(rawEmail)
	if err != nil {
		return nil, s.failAfterDummyVerify(ctx, client, password)
	}
	u, err := s.store.Users(s.uow.Pool()).ByEmail(ctx, email)
	if errors.Is(err, user.ErrNotFound) {
		return nil, s.failAfterDummyVerify(ctx, client, password)
	}
	if err != nil {
		return nil, err
	}
	ok, err := s.hasher.Verify(ctx, client, u.PasswordHash(), password)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, user.ErrInvalidCredentials
	}
	return u, nil
}

// failAfterDummyVerify spends on an unknown email the hashing a wrong password costs, in the
// caller's own share of the hasher like any other check, and fails.
func (s *Auth) failAfterDummyVerify(ctx context.Context, client accounts.ClientKey, password string) error {
	hash, err := s.dummy(ctx, client)
	if err != nil {
		return err
	}
	if _, err := s.hasher.Verify(ctx, client, hash, password); err != nil {
		return err
	}
	return user.ErrInvalidCredentials
}

// dummy returns the dummy hash, making it first when needed. No lock is held while hashing:
// a lock would queue every unknown-email login behind one waiting for a hashing slot, outside
// the hasher's fair and bounded queue (under a flood, logins waited seconds on it just to be
// shed). Logins that arrive together before the first dummy exists each make one, in their
// own share of the hasher, and the first one stored is kept.
func (s *Auth) dummy(ctx context.Context, client accounts.ClientKey) (user.PasswordHash, error) {
	if h := s.dummyHash.Load(); h != nil {
		return *h, nil
	}
	hash, err := s.hasher.Hash(ctx, client, "timing-equaliser-not-a-real-password")
	if err != nil {
		return "", err
	}
	s.dummyHash.CompareAndSwap(nil, &hash)
	return *s.dummyHash.Load(), nil
}

func throttleKeys(rawEmail, addr string) []string {
	// The account key uses the same normalisation as ParseEmail without validating, so that
	// "A@x.io " and "a@x.io" (or a composed and a decomposed "é") share a budget even when
	// the address is malformed.
	account := "account:" + user.NormalizeEmail(rawEmail)
	if len(account) > 300 {
		account = account[:300]
	}
	return []string{account, "addr:" + addr}
}

// signupKey is the throttle key of signups from one client address.
func signupKey(addr string) string { return "signup:" + addr }

// Refresh rotates a refresh token. Presenting a retired token revokes the whole session.
func (s *Auth) Refresh(ctx context.Context, refreshToken string) (accounts.AuthResult, error) {
	sid, err := session.SessionIDFromRefreshToken(refreshToken)
	if err != nil {
		return accounts.AuthResult{}, err
	}
	var (
		next        string
		reused      bool
		sessionEnds time.Time
	)
	now := s.clock.Now()
	err = s.uow.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		// Locked: a concurrent refresh with the same token waits here for this one to
		// commit, then finds the token retired and revokes the session, and a logout that
		// committed meanwhile is seen, never written over.
		sess, err := s.store.Sessions(tx).ByIDForUpdate(ctx, sid)
		if errors.Is(err, session.ErrNotFound) {
			return session.ErrInvalidRefreshToken
		}
		if err != nil {
			return err
		}
		sessionEnds = sess.ExpiresAt()
		next, err = sess.Rotate(refreshToken, now)
		if errors.Is(err, session.ErrReuse) {
			// The revocation must commit, so this is not returned as an error from the
			// transaction; the caller still gets invalid_refresh_token below.
			reused = true
			if err := s.stamps.Bump(ctx, tx, sess.UserID(), ports.StampScopeAuth); err != nil && !errors.Is(err, user.ErrNotFound) {
				return err
			}
			return s.store.Sessions(tx).Update(ctx, sess)
		}
		if err != nil {
			return err
		}
		return s.store.Sessions(tx).Update(ctx, sess)
	})
	if err != nil {
		return accounts.AuthResult{}, err
	}
	if reused {
		return accounts.AuthResult{}, session.ErrInvalidRefreshToken
	}
	principal, err := s.store.Sessions(s.uow.Pool()).Principal(ctx, sid, now)
	if errors.Is(err, session.ErrNotFound) {
		return accounts.AuthResult{}, session.ErrInvalidRefreshToken
	}
	if err != nil {
		return accounts.AuthResult{}, err
	}
	u, err := s.store.Users(s.uow.Pool()).ByID(ctx, principal.UserID)
	if errors.Is(err, user.ErrNotFound) {
		return accounts.AuthResult{}, session.ErrInvalidRefreshToken
	}
	if err != nil {
		return accounts.AuthResult{}, err
	}
	return s.result(u, sid, next, sessionEnds)
}

// Logout revokes the caller's session and, when the client also sends a refresh token of
// another of its own sessions, that one too. An unusable refresh token in the body is ignored
// rather than refused (as RFC 7009 does for revocation): refusing it would leave the caller's
// own session alive while the client, seeing a 401, believes it has logged out. A token that
// names another session without carrying its family is unusable: the session id is the "sid"
// of every access token, so it proves nothing, and Refresh refuses such a forgery too.
func (s *Auth) Logout(ctx context.Context, p identity.Principal, refreshToken string) error {
	if p.Credential.Kind != identity.CredentialSession {
		// Only a login session can be logged out of; the HTTP module answers other
		// credentials 403 before they get here.
		return identity.ErrSessionRequired
	}
	current := session.ID(p.Credential.ID)
	sids := []session.ID{current}
	if sid, err := session.SessionIDFromRefreshToken(refreshToken); err == nil && sid != current {
		sids = append(sids, sid)
	}
	now := s.clock.Now()
	return s.uow.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		// Every instance reads the user's principals again once this commits, and finds the
		// session revoked. Bumped first: it takes the user's lock, which every write of the
		// user takes first.
		if err := s.stamps.Bump(ctx, tx, p.UserID, ports.StampScopeAuth); err != nil {
			if errors.Is(err, user.ErrNotFound) {
				return nil // the account is gone, and its sessions with it
			}
			return err
		}
		for _, sid := range sids {
			sess, err := s.store.Sessions(tx).ByIDForUpdate(ctx, sid)
			if errors.Is(err, session.ErrNotFound) || (err == nil && sess.UserID() != p.UserID) {
				continue // not the caller's to revoke; revoking its own session still succeeds
			}
			if err == nil && sid != current && !sess.IssuedFor(refreshToken) {
				continue // names the session without being one of its tokens
			}
			if err != nil {
				return err
			}
			sess.Revoke(now)
			if err := s.store.Sessions(tx).Update(ctx, sess); err != nil {
				return err
			}
		}
		return nil
	})
}

// Accepts reports whether credential looks like an access token (a JWT: three base64url parts
// separated by dots). It does no verification; personal API keys have a prefix of their own.
func (s *Auth) Accepts(credential string) bool {
	return strings.Count(credential, ".") == 2
}

// Authenticate verifies the access token and reads the caller's current state: the session
// must be active and the account present, so logout, deletion and role changes apply to the
// very next request.
func (s *Auth) Authenticate(ctx context.Context, accessToken string) (identity.Principal, error) {
	claims, err := s.tokens.Verify(accessToken)
	if err != nil {
		return identity.Principal{}, err
	}
	p, err := s.principals.Resolve(ctx, "session:"+string(claims.SessionID), s.clock.Now(),
		func(ctx context.Context) (identity.Principal, time.Time, error) {
			p, err := s.store.Sessions(s.uow.Pool()).Principal(ctx, claims.SessionID, s.clock.Now())
			return p, p.Credential.ExpiresAt, err
		})
	if errors.Is(err, session.ErrNotFound) {
		return identity.Principal{}, domain.ErrUnauthenticated
	}
	if err != nil {
		return identity.Principal{}, err
	}
	if p.UserID != claims.UserID {
		return identity.Principal{}, domain.ErrUnauthenticated
	}
	return p, nil
}

// Me returns the caller's account.
func (s *Auth) Me(ctx context.Context, p identity.Principal) (*user.User, error) {
	u, err := s.store.Users(s.uow.Pool()).ByID(ctx, p.UserID)
	if err != nil {
		return nil, identity.AsCaller(err)
	}
	return u, nil
}

// UpdateMe changes the caller's own display name.
func (s *Auth) UpdateMe(ctx context.Context, p identity.Principal, in accounts.ProfileUpdate) (*user.User, error) {
	var u *user.User
	err := s.uow.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		var err error
		// Locked: a role change committing meanwhile is read, never written back over.
		u, err = s.store.Users(tx).ByIDForUpdate(ctx, p.UserID)
		if err != nil {
			return err
		}
		if in.Name != nil {
			if err := u.Rename(*in.Name, s.clock.Now()); err != nil {
				return err
			}
		}
		return s.store.Users(tx).Update(ctx, u)
	})
	if err != nil {
		return nil, identity.AsCaller(err)
	}
	return u, nil
}

// result signs the access token after the session is committed. expires_in is the token's
// lifetime, cut to what is left of the session (sessionEnds): a token is refused once its
// session has ended, whatever its own expiry says, and a refresh does not extend a session,
// so a token issued near the session's end was announced with more life than it had.
func (s *Auth) result(u *user.User, sid session.ID, refresh string, sessionEnds time.Time) (accounts.AuthResult, error) {
	token, lifetime, err := s.tokens.Issue(u.ID(), sid)
	if err != nil {
		return accounts.AuthResult{}, err
	}
	lifetime = max(min(lifetime, sessionEnds.Sub(s.clock.Now())), 0)
	return accounts.AuthResult{AccessToken: token, ExpiresInSeconds: int64(lifetime / time.Second), RefreshToken: refresh, User: u}, nil
}
