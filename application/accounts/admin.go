package accounts

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/acme/postsvc/application/paging"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/ports/accounts"
)

// MaxQueryChars bounds the directory search text.
const MaxQueryChars = 254

// UserCleanupJob is the kind of the job that, after a user's deletion has committed, has every
// context clean what it keeps of the user outside the database. Its payload is the user id.
const UserCleanupJob = "accounts.user_cleanup"

// Admin implements accounts.AdminService.
type Admin struct {
	uow    ports.UnitOfWork
	store  accounts.Store
	hasher accounts.PasswordHasher
	jobs   ports.JobQueue
	stamps ports.Stamps
	// owners are the contexts that keep users' data; deleting a user calls each of them, so
	// this use case never needs to know which contexts exist.
	owners []ports.UserDataOwner
	clock  ports.Clock
	ids    ports.IDGenerator
}

var _ accounts.AdminService = (*Admin)(nil)

// NewAdmin builds the administration use case.
func NewAdmin(uow ports.UnitOfWork, store accounts.Store, hasher accounts.PasswordHasher, jobs ports.JobQueue,
	stamps ports.Stamps, owners []ports.UserDataOwner, clock ports.Clock, ids ports.IDGenerator,
) *Admin {
	return &Admin{uow: uow, store: store, hasher: hasher, jobs: jobs, stamps: stamps, owners: owners, clock: clock, ids: ids}
}

func requireAdmin(p identity.Principal) error { return identity.RequireAdmin(p) }

// ListUsers searches the directory, newest accounts first.
func (s *Admin) ListUsers(ctx context.Context, p identity.Principal, req accounts.UserListRequest) (accounts.UserPage, error) {
	if err := requireAdmin(p); err != nil {
		return accounts.UserPage{}, err
	}
	var v domain.Validator
	limit, err := paging.Limit(req.Limit)
	v.Check(err)
	before, err := paging.Decode(req.Cursor)
	v.Check(err)
	if !utf8.ValidString(req.Query) || utf8.RuneCountInString(req.Query) > MaxQueryChars {
		v.Check(domain.Invalid("q", "must be at most 254 characters of valid UTF-8"))
	}
	if err := v.Err(); err != nil {
		return accounts.UserPage{}, err
	}
	users, err := s.store.Users(s.uow.Pool()).Search(ctx, accounts.UserQuery{Query: req.Query, Before: identity.UserID(before), Limit: limit + 1})
	if err != nil {
		return accounts.UserPage{}, err
	}
	page := accounts.UserPage{Users: users}
	if len(users) > limit {
		page.Users = users[:limit]
		page.NextCursor = paging.Encode(string(users[limit-1].ID()))
	}
	return page, nil
}

// GetUser returns one account.
func (s *Admin) GetUser(ctx context.Context, p identity.Principal, id string) (*user.User, error) {
	if err := requireAdmin(p); err != nil {
		return nil, err
	}
	if !paging.ValidID(id) {
		return nil, user.ErrNotFound
	}
	return s.store.Users(s.uow.Pool()).ByID(ctx, identity.UserID(id))
}

// CreateUser creates an account with the given role. Its password is hashed in the admin's
// client address's share of the hasher, like a signup's.
func (s *Admin) CreateUser(ctx context.Context, p identity.Principal, in accounts.NewUserInput) (*user.User, error) {
	if err := requireAdmin(p); err != nil {
		return nil, err
	}
	return s.CreateAccount(ctx, accounts.ClientKey(in.ClientAddr), in)
}

// CreateAccount validates and stores a new account with a chosen role, hashing its password
// for client. It is shared by the admin endpoint, the command line and the bootstrap admin,
// which have no principal; the last two pass accounts.LocalClient.
func (s *Admin) CreateAccount(ctx context.Context, client accounts.ClientKey, in accounts.NewUserInput) (*user.User, error) {
	var v domain.Validator
	email, err := user.ParseNewEmail(in.Email)
	v.Check(err)
	v.Check(user.ValidatePassword(in.Password))
	name, err := user.ParseName(in.Name)
	v.Check(err)
	role := identity.RoleUser
	if in.Role != "" {
		role, err = identity.ParseRole(in.Role)
		v.Check(err)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	hash, err := s.hasher.Hash(ctx, client, in.Password)
	if err != nil {
		return nil, err
	}
	ctx, cancel := afterHashing(ctx)
	defer cancel()
	u, err := user.New(identity.UserID(s.ids.NewID()), email, hash, name, role, s.clock.Now())
	if err != nil {
		return nil, err
	}
	if err := s.uow.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		return s.store.Users(tx).Add(ctx, u)
	}); err != nil {
		return nil, err
	}
	return u, nil
}

// UpdateUser changes an account's name and/or role. The last admin cannot be demoted.
func (s *Admin) UpdateUser(ctx context.Context, p identity.Principal, id string, in accounts.UserUpdate) (*user.User, error) {
	if err := requireAdmin(p); err != nil {
		return nil, err
	}
	var v domain.Validator
	var role identity.Role
	if in.Role != nil {
		var err error
		role, err = identity.ParseRole(*in.Role)
		v.Check(err)
	}
	if in.Name != nil {
		_, err := user.ParseName(*in.Name)
		v.Check(err)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if !paging.ValidID(id) {
		return nil, user.ErrNotFound
	}
	var u *user.User
	now := s.clock.Now()
	err := s.uow.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		users := s.store.Users(tx)
		admins := 0
		if in.Role != nil {
			// The admin rows are locked before the user's own, in every role change, so two
			// concurrent ones take their locks in one order.
			var err error
			if admins, err = users.CountAdminsForUpdate(ctx); err != nil {
				return err
			}
		}
		// Locked: a concurrent rename or role change of the user waits, and this one reads
		// what the other committed instead of writing its own stale copy back over it.
		var err error
		if u, err = users.ByIDForUpdate(ctx, identity.UserID(id)); err != nil {
			return err
		}
		if in.Role != nil && u.Role().IsAdmin() && !role.IsAdmin() && admins <= 1 {
			return user.ErrLastAdmin
		}
		if in.Role != nil && u.Role() != role {
			// Every instance's principals of the user are read again (ports.StampScopeAuth).
			if err := s.stamps.Bump(ctx, tx, u.ID(), ports.StampScopeAuth); err != nil {
				return err
			}
			if err := u.ChangeRole(role, now); err != nil {
				return err
			}
		}
		if in.Name != nil {
			if err := u.Rename(*in.Name, now); err != nil {
				return err
			}
		}
		return users.Update(ctx, u)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// DeleteUser deletes an account and everything every context keeps of it, in one
// transaction: each ports.UserDataOwner deletes its rows in it, the user's sessions are
// revoked, and a job is enqueued with them that cleans what lives outside the database once
// the deletion has committed (retried until it succeeds, on any instance, even if this one
// dies first). The last admin cannot be deleted.
func (s *Admin) DeleteUser(ctx context.Context, p identity.Principal, id string) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	if !paging.ValidID(id) {
		return user.ErrNotFound
	}
	uid := identity.UserID(id)
	return s.uow.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		users := s.store.Users(tx)
		// Locked, so the role read here is the committed one and stays so until this
		// commits: a plain read let a user promoted meanwhile (while the other admins stepped
		// down) be deleted as a "user", without the check below, leaving no admin at all. A
		// user's deletion takes no other lock for the check; an admin's, which owns no
		// content and so commits quickly, also locks the admin rows.
		u, err := users.ByIDForUpdate(ctx, uid)
		if err != nil {
			return err
		}
		if u.Role().IsAdmin() {
			if err := ensureAnotherAdmin(ctx, users); err != nil {
				return err
			}
		}
		// Published after the commit, so every instance reads the principals of the user's
		// credentials again, and finds none.
		if err := s.stamps.Bump(ctx, tx, uid, ports.StampScopeAuth); err != nil {
			return err
		}
		for _, owner := range s.owners {
			if err := owner.DeleteUserData(ctx, tx, uid); err != nil {
				return err
			}
		}
		if err := s.store.Sessions(tx).RevokeAllForUser(ctx, uid, s.clock.Now()); err != nil {
			return err
		}
		if err := users.Delete(ctx, uid); err != nil {
			return err
		}
		_, err = s.jobs.Enqueue(ctx, tx, ports.NewJob{Kind: UserCleanupJob, Payload: []byte(uid)})
		return err
	})
}

// CleanUpDeletedUser runs the UserCleanupJob: every context cleans what it keeps of the user
// outside the database. A failure of any of them fails the attempt, and the job is retried;
// the others' cleanups succeed again harmlessly, since each must be idempotent.
func (s *Admin) CleanUpDeletedUser(ctx context.Context, job ports.Job) error {
	uid := identity.UserID(job.Payload)
	if !paging.ValidID(string(uid)) {
		return fmt.Errorf("accounts: user cleanup job %s: %q is not a user id", job.ID, job.Payload)
	}
	var errs []error
	for _, owner := range s.owners {
		errs = append(errs, owner.CleanUpUser(ctx, uid))
	}
	return errors.Join(errs...)
}

// Bootstrap creates the configured first admin when the service has no admin yet. Once any
// admin exists it does nothing, so the settings can stay in place without effect; created
// says whether it made the account. An email that is already registered is left alone: an
// existing account is never promoted silently.
func (s *Admin) Bootstrap(ctx context.Context, email, password string) (u *user.User, created bool, err error) {
	n, err := s.store.Users(s.uow.Pool()).CountAdminsForUpdate(ctx)
	if err != nil || n > 0 {
		return nil, false, err
	}
	u, err = s.CreateAccount(ctx, accounts.LocalClient, accounts.NewUserInput{
		Email: email, Password: password, Role: string(identity.RoleAdmin),
	})
	switch {
	case errors.Is(err, user.ErrEmailTaken):
		// Another instance won the race, or the address belongs to a plain user.
		return nil, false, nil
	case err != nil:
		return nil, false, err
	}
	return u, true, nil
}

// ensureAnotherAdmin fails with user.ErrLastAdmin unless at least two admins exist; the count
// locks the admin rows so two concurrent demotions cannot both pass.
func ensureAnotherAdmin(ctx context.Context, users accounts.UserRepository) error {
	n, err := users.CountAdminsForUpdate(ctx)
	if err != nil {
		return err
	}
	if n <= 1 {
		return user.ErrLastAdmin
	}
	return nil
}
