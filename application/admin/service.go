// Package admin is the user directory for administrators: list, search, create, change and
// delete accounts. Admins manage accounts only; they never read or write content.
package admin

import (
	"context"

	"unicode/utf8"

	"github.com/acme/postsvc/application/paging"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/session"
	"github.com/acme/postsvc/domain/user"
	"github.com/acme/postsvc/ports"
)

// MaxQueryChars bounds the directory search text.
const MaxQueryChars = 254

// Service implements ports.AdminService.
type Service struct {
	uow    ports.UnitOfWork
	repos  ports.Repositories
	hasher ports.PasswordHasher
	cache  ports.PostListCache
	clock  ports.Clock
	ids    ports.IDGenerator
}

var _ ports.AdminService = (*Service)(nil)

// NewService builds the administration use case.
func NewService(uow ports.UnitOfWork, repos ports.Repositories, hasher ports.PasswordHasher, cache ports.PostListCache,
	clock ports.Clock, ids ports.IDGenerator,
) *Service {
	return &Service{uow: uow, repos: repos, hasher: hasher, cache: cache, clock: clock, ids: ids}
}

func requireAdmin(p session.Principal) error {
	if !p.Role.IsAdmin() {
		return domain.ErrForbidden
	}
	return nil
}

// ListUsers searches the directory, newest accounts first.
func (s *Service) ListUsers(ctx context.Context, p session.Principal, req ports.UserListRequest) (ports.UserPage, error) {
	if err := requireAdmin(p); err != nil {
		return ports.UserPage{}, err
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
		return ports.UserPage{}, err
	}
	users, err := s.repos.Users().Search(ctx, ports.UserQuery{Query: req.Query, Before: user.ID(before), Limit: limit + 1})
	if err != nil {
		return ports.UserPage{}, err
	}
	page := ports.UserPage{Users: users}
	if len(users) > limit {
		page.Users = users[:limit]
		page.NextCursor = paging.Encode(string(users[limit-1].ID()))
	}
	return page, nil
}

// GetUser returns one account.
func (s *Service) GetUser(ctx context.Context, p session.Principal, id string) (*user.User, error) {
	if err := requireAdmin(p); err != nil {
		return nil, err
	}
	if !paging.ValidID(id) {
		return nil, user.ErrNotFound
	}
	return s.repos.Users().ByID(ctx, user.ID(id))
}

// CreateUser creates an account with the given role. Its password is hashed in the admin's
// client address's share of the hasher, like a signup's.
func (s *Service) CreateUser(ctx context.Context, p session.Principal, in ports.NewUserInput) (*user.User, error) {
	if err := requireAdmin(p); err != nil {
		return nil, err
	}
	return CreateAccount(ctx, s.uow, s.hasher, s.clock, s.ids, ports.ClientKey(in.ClientAddr), in)
}

// CreateAccount validates and stores a new account with a chosen role, hashing its password
// for client. It is shared by the admin endpoint, the command line and the bootstrap admin,
// which have no principal; the last two pass ports.LocalClient.
func CreateAccount(ctx context.Context, uow ports.UnitOfWork, hasher ports.PasswordHasher, clock ports.Clock,
	ids ports.IDGenerator, client ports.ClientKey, in ports.NewUserInput,
) (*user.User, error) {
	var v domain.Validator
	email, err := user.ParseEmail(in.Email)
	v.Check(err)
	v.Check(user.ValidatePassword(in.Password))
	name, err := user.ParseName(in.Name)
	v.Check(err)
	role := user.RoleUser
	if in.Role != "" {
		role, err = user.ParseRole(in.Role)
		v.Check(err)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	hash, err := hasher.Hash(ctx, client, in.Password)
	if err != nil {
		return nil, err
	}
	u, err := user.New(user.ID(ids.NewID()), email, hash, name, role, clock.Now())
	if err != nil {
		return nil, err
	}
	if err := uow.Do(ctx, func(ctx context.Context, tx ports.Repositories) error {
		return tx.Users().Add(ctx, u)
	}); err != nil {
		return nil, err
	}
	return u, nil
}

// UpdateUser changes an account's name and/or role. The last admin cannot be demoted.
func (s *Service) UpdateUser(ctx context.Context, p session.Principal, id string, in ports.UserUpdate) (*user.User, error) {
	if err := requireAdmin(p); err != nil {
		return nil, err
	}
	var v domain.Validator
	var role user.Role
	if in.Role != nil {
		var err error
		role, err = user.ParseRole(*in.Role)
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
	err := s.uow.Do(ctx, func(ctx context.Context, tx ports.Repositories) error {
		var err error
		if u, err = tx.Users().ByID(ctx, user.ID(id)); err != nil {
			return err
		}
		if in.Role != nil && u.Role().IsAdmin() && !role.IsAdmin() {
			if err := ensureAnotherAdmin(ctx, tx); err != nil {
				return err
			}
		}
		if in.Role != nil {
			if err := u.ChangeRole(role, now); err != nil {
				return err
			}
		}
		if in.Name != nil {
			if err := u.Rename(*in.Name, now); err != nil {
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

// DeleteUser deletes an account with its posts and sessions. The last admin cannot be deleted.
func (s *Service) DeleteUser(ctx context.Context, p session.Principal, id string) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	if !paging.ValidID(id) {
		return user.ErrNotFound
	}
	uid := user.ID(id)
	err := s.uow.Do(ctx, func(ctx context.Context, tx ports.Repositories) error {
		u, err := tx.Users().ByID(ctx, uid)
		if err != nil {
			return err
		}
		if u.Role().IsAdmin() {
			if err := ensureAnotherAdmin(ctx, tx); err != nil {
				return err
			}
		}
		if err := tx.Posts().DeleteByAuthor(ctx, uid); err != nil {
			return err
		}
		if err := tx.Sessions().RevokeAllForUser(ctx, uid, s.clock.Now()); err != nil {
			return err
		}
		return tx.Users().Delete(ctx, uid)
	})
	if err != nil {
		return err
	}
	s.cache.Forget(uid)
	return nil
}

// ensureAnotherAdmin fails with user.ErrLastAdmin unless at least two admins exist; the count
// locks the admin rows so two concurrent demotions cannot both pass.
func ensureAnotherAdmin(ctx context.Context, tx ports.Repositories) error {
	n, err := tx.Users().CountAdminsForUpdate(ctx)
	if err != nil {
		return err
	}
	if n <= 1 {
		return user.ErrLastAdmin
	}
	return nil
}
