// Package auth is the accounts use case: signup, login, refresh, logout, authentication of
// every request, and the caller's own profile.
package auth

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/session"
	"github.com/acme/postsvc/domain/user"
	"github.com/acme/postsvc/ports"
)

// Settings are the use case's tunables, filled from configuration by the composition root.
type Settings struct {
	// RefreshTokenTTL is how long a session lives from login; refreshing does not extend it,
	// so a stolen refresh token is useful for a bounded time.
	RefreshTokenTTL time.Duration
}

// Service implements ports.AuthService.
type Service struct {
	uow      ports.UnitOfWork
	repos    ports.Repositories
	hasher   ports.PasswordHasher
	tokens   ports.TokenIssuer
	throttle ports.AttemptThrottle
	clock    ports.Clock
	ids      ports.IDGenerator
	settings Settings

	// dummyHash is verified against when an email is unknown, so that a login for a missing
	// account costs the same hashing time as a wrong password and timing tells nothing. It is
	// made by the first such login and kept.
	dummyHash atomic.Pointer[user.PasswordHash]
}

var _ ports.AuthService = (*Service)(nil)

// NewService builds the accounts use case.
func NewService(uow ports.UnitOfWork, repos ports.Repositories, hasher ports.PasswordHasher, tokens ports.TokenIssuer,
	throttle ports.AttemptThrottle, clock ports.Clock, ids ports.IDGenerator, settings Settings,
) *Service {
	return &Service{uow: uow, repos: repos, hasher: hasher, tokens: tokens, throttle: throttle, clock: clock, ids: ids, settings: settings}
}

// Signup creates a user account and opens its first session. Signups are throttled per client
// address: each one costs a password hash, and without a limit one client could keep the
// hasher busy for everyone.
func (s *Service) Signup(ctx context.Context, in ports.SignupInput) (ports.AuthResult, error) {
	var v domain.Validator
	email, err := user.ParseEmail(in.Email)
	v.Check(err)
	v.Check(user.ValidatePassword(in.Password))
	name, err := user.ParseName(in.Name)
	v.Check(err)
	if err := v.Err(); err != nil {
		// Invalid input is answered without hashing, so it is not counted either.
		return ports.AuthResult{}, err
	}
	// The signup counts from here, whatever happens next (a taken email included), except
	// when nothing was hashed.
	key := signupKey(in.ClientAddr)
	if err := s.throttle.Admit(ctx, key); err != nil {
		return ports.AuthResult{}, err
	}
	// Hashing is slow and memory-hard: it happens before the transaction opens.
	hash, err := s.hasher.Hash(ctx, ports.ClientKey(in.ClientAddr), in.Password)
	if err != nil {
		s.throttle.Refund(ctx, key)
		return ports.AuthResult{}, err
	}
	now := s.clock.Now()
	u, err := user.New(user.ID(s.ids.NewID()), email, hash, name, user.RoleUser, now)
	if err != nil {
		return ports.AuthResult{}, err
	}
	sess, refresh, err := session.New(session.ID(s.ids.NewID()), u.ID(), now, s.settings.RefreshTokenTTL)
	if err != nil {
		return ports.AuthResult{}, err
	}
	err = s.uow.Do(ctx, func(ctx context.Context, tx ports.Repositories) error {
		if err := tx.Users().Add(ctx, u); err != nil {
			return err
		}
		return tx.Sessions().Add(ctx, sess)
	})
	if err != nil {
		return ports.AuthResult{}, err
	}
	return s.result(u, sess.ID(), refresh)
}

// Login checks a password and opens a session. Unknown emails and wrong passwords get the
// same error after the same hashing work; failures are throttled per account and per address.
//
// An attempt is counted when it is admitted, before the password is checked, so that however
// many guesses arrive at once no more than the budget are tested. Only a failure keeps its
// count: an attempt that tested nothing (shed, cancelled, the database unreachable) is given
// back, and so is a success.
func (s *Service) Login(ctx context.Context, in ports.LoginInput) (ports.AuthResult, error) {
	keys := throttleKeys(in.Email, in.ClientAddr)
	if err := s.throttle.Admit(ctx, keys...); err != nil {
		return ports.AuthResult{}, err
	}
	u, err := s.checkPassword(ctx, ports.ClientKey(in.ClientAddr), in.Email, in.Password)
	if errors.Is(err, user.ErrInvalidCredentials) {
		return ports.AuthResult{}, err
	}
	if err != nil {
		// An outage is not a guess: it must not lock the account's owner out.
		s.throttle.Refund(ctx, keys...)
		return ports.AuthResult{}, err
	}
	// A success clears the account's failures. The address only gets back the attempt this
	// login took, never its earlier failures: otherwise an attacker could reset its own
	// address budget by logging into an account it owns.
	s.throttle.Reset(ctx, keys[0])
	s.throttle.Refund(ctx, keys[1])
	sess, refresh, err := session.New(session.ID(s.ids.NewID()), u.ID(), s.clock.Now(), s.settings.RefreshTokenTTL)
	if err != nil {
		return ports.AuthResult{}, err
	}
	if err := s.uow.Do(ctx, func(ctx context.Context, tx ports.Repositories) error {
		return tx.Sessions().Add(ctx, sess)
	}); err != nil {
		return ports.AuthResult{}, err
	}
	return s.result(u, sess.ID(), refresh)
}

// checkPassword returns the account when email and password match, user.ErrInvalidCredentials
// when they do not, and any infrastructure error as it is: an outage is never reported as
// bad credentials. Every hash it computes, the dummy one included, is client's.
func (s *Service) checkPassword(ctx context.Context, client ports.ClientKey, rawEmail, password string) (*user.User, error) {
	if len(password) > user.MaxPasswordBytes || password == "" {
		// No account can have such a password; nothing secret is learned from rejecting it early.
		return nil, user.ErrInvalidCredentials
	}
	email, err := user.ParseEmail(rawEmail)
	if err != nil {
		return nil, s.failAfterDummyVerify(ctx, client, password)
	}
	u, err := s.repos.Users().ByEmail(ctx, email)
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
func (s *Service) failAfterDummyVerify(ctx context.Context, client ports.ClientKey, password string) error {
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
func (s *Service) dummy(ctx context.Context, client ports.ClientKey) (user.PasswordHash, error) {
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
func (s *Service) Refresh(ctx context.Context, refreshToken string) (ports.AuthResult, error) {
	sid, err := session.SessionIDFromRefreshToken(refreshToken)
	if err != nil {
		return ports.AuthResult{}, err
	}
	var (
		next   string
		reused bool
	)
	now := s.clock.Now()
	err = s.uow.Do(ctx, func(ctx context.Context, tx ports.Repositories) error {
		sess, err := tx.Sessions().ByID(ctx, sid)
		if errors.Is(err, session.ErrNotFound) {
			return session.ErrInvalidRefreshToken
		}
		if err != nil {
			return err
		}
		next, err = sess.Rotate(refreshToken, now)
		if errors.Is(err, session.ErrReuse) {
			// The revocation must commit, so this is not returned as an error from the
			// transaction; the caller still gets invalid_refresh_token below.
			reused = true
			return tx.Sessions().Update(ctx, sess)
		}
		if err != nil {
			return err
		}
		return tx.Sessions().Update(ctx, sess)
	})
	if err != nil {
		return ports.AuthResult{}, err
	}
	if reused {
		return ports.AuthResult{}, session.ErrInvalidRefreshToken
	}
	principal, err := s.repos.Sessions().Principal(ctx, sid, now)
	if errors.Is(err, session.ErrNotFound) {
		return ports.AuthResult{}, session.ErrInvalidRefreshToken
	}
	if err != nil {
		return ports.AuthResult{}, err
	}
	u, err := s.repos.Users().ByID(ctx, principal.UserID)
	if errors.Is(err, user.ErrNotFound) {
		return ports.AuthResult{}, session.ErrInvalidRefreshToken
	}
	if err != nil {
		return ports.AuthResult{}, err
	}
	return s.result(u, sid, next)
}

// Logout revokes the caller's session and, when the client also sends a refresh token of
// another of its own sessions, that one too. An unusable refresh token in the body is ignored
// rather than refused (as RFC 7009 does for revocation): refusing it would leave the caller's
// own session alive while the client, seeing a 401, believes it has logged out.
func (s *Service) Logout(ctx context.Context, p session.Principal, refreshToken string) error {
	sids := []session.ID{p.SessionID}
	if sid, err := session.SessionIDFromRefreshToken(refreshToken); err == nil && sid != p.SessionID {
		sids = append(sids, sid)
	}
	now := s.clock.Now()
	return s.uow.Do(ctx, func(ctx context.Context, tx ports.Repositories) error {
		for _, sid := range sids {
			sess, err := tx.Sessions().ByID(ctx, sid)
			if errors.Is(err, session.ErrNotFound) || (err == nil && sess.UserID() != p.UserID) {
				continue // not the caller's to revoke; revoking its own session still succeeds
			}
			if err != nil {
				return err
			}
			sess.Revoke(now)
			if err := tx.Sessions().Update(ctx, sess); err != nil {
				return err
			}
		}
		return nil
	})
}

// Authenticate verifies the access token and reads the caller's current state: the session
// must be active and the account present, so logout, deletion and role changes apply to the
// very next request.
func (s *Service) Authenticate(ctx context.Context, accessToken string) (session.Principal, error) {
	claims, err := s.tokens.Verify(accessToken)
	if err != nil {
		return session.Principal{}, err
	}
	p, err := s.repos.Sessions().Principal(ctx, claims.SessionID, s.clock.Now())
	if errors.Is(err, session.ErrNotFound) {
		return session.Principal{}, domain.ErrUnauthenticated
	}
	if err != nil {
		return session.Principal{}, err
	}
	if p.UserID != claims.UserID {
		return session.Principal{}, domain.ErrUnauthenticated
	}
	return p, nil
}

// Me returns the caller's account.
func (s *Service) Me(ctx context.Context, p session.Principal) (*user.User, error) {
	u, err := s.repos.Users().ByID(ctx, p.UserID)
	if errors.Is(err, user.ErrNotFound) {
		return nil, domain.ErrUnauthenticated
	}
	return u, err
}

// UpdateMe changes the caller's own display name.
func (s *Service) UpdateMe(ctx context.Context, p session.Principal, in ports.ProfileUpdate) (*user.User, error) {
	var u *user.User
	err := s.uow.Do(ctx, func(ctx context.Context, tx ports.Repositories) error {
		var err error
		u, err = tx.Users().ByID(ctx, p.UserID)
		if errors.Is(err, user.ErrNotFound) {
			return domain.ErrUnauthenticated
		}
		if err != nil {
			return err
		}
		if in.Name != nil {
			if err := u.Rename(*in.Name, s.clock.Now()); err != nil {
				return err
			}
		}
		return tx.Users().Update(ctx, u)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// result signs the access token after the session is committed.
func (s *Service) result(u *user.User, sid session.ID, refresh string) (ports.AuthResult, error) {
	token, lifetime, err := s.tokens.Issue(u.ID(), sid)
	if err != nil {
		return ports.AuthResult{}, err
	}
	return ports.AuthResult{AccessToken: token, ExpiresInSeconds: int64(lifetime / time.Second), RefreshToken: refresh, User: u}, nil
}
