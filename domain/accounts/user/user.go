// Package user is the account aggregate: identity, credentials and role.
package user

import (
	"errors"
	"time"

	"github.com/acme/postsvc/domain/identity"
)

// User is an account. Its fields are unexported so it cannot be built or changed into an
// invalid state; use New for new accounts and Rehydrate for rows read from storage.
type User struct {
	id           identity.UserID
	email        Email
	passwordHash PasswordHash
	name         string
	role         identity.Role
	createdAt    time.Time
	updatedAt    time.Time
}

// New creates an account. The email must come from ParseEmail, the name from ParseName and
// the role from ParseRole (or a constant); the hash from the hasher port.
func New(id identity.UserID, email Email, hash PasswordHash, name string, role identity.Role, now time.Time) (*User, error) {
	if id == "" {
		return nil, errors.New("user: empty id")
	}
	if email.IsZero() {
		return nil, errors.New("user: empty email")
	}
	if hash == "" {
		return nil, errors.New("user: empty password hash")
	}
	if _, err := ParseName(name); err != nil {
		return nil, err
	}
	if _, err := identity.ParseRole(string(role)); err != nil {
		return nil, err
	}
	now = now.UTC()
	return &User{id: id, email: email, passwordHash: hash, name: name, role: role, createdAt: now, updatedAt: now}, nil
}

// Rehydrate rebuilds an account from storage. Storage holds only what New once validated, so
// nothing is checked again; it exists so adapters never reach into unexported fields. Use New
// for anything that did not come from the service's own database.
func Rehydrate(id identity.UserID, email string, hash PasswordHash, name string, role identity.Role, createdAt, updatedAt time.Time) *User {
	return &User{
		id: id, email: Email{value: email}, passwordHash: hash, name: name, role: role,
		createdAt: createdAt.UTC(), updatedAt: updatedAt.UTC(),
	}
}

func (u *User) ID() identity.UserID        { return u.id }
func (u *User) Email() Email               { return u.email }
func (u *User) PasswordHash() PasswordHash { return u.passwordHash }
func (u *User) Name() string               { return u.name }
func (u *User) Role() identity.Role        { return u.role }
func (u *User) CreatedAt() time.Time       { return u.createdAt }
func (u *User) UpdatedAt() time.Time       { return u.updatedAt }

// Rename changes the display name.
func (u *User) Rename(raw string, now time.Time) error {
	name, err := ParseName(raw)
	if err != nil {
		return err
	}
	u.name = name
	u.updatedAt = now.UTC()
	return nil
}

// ChangeRole sets the role. The last-admin rule needs the whole directory, so it is the
// application's to check before calling this.
func (u *User) ChangeRole(role identity.Role, now time.Time) error {
	if _, err := identity.ParseRole(string(role)); err != nil {
		return err
	}
	u.role = role
	u.updatedAt = now.UTC()
	return nil
}
