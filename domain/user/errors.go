package user

import "errors"

var (
	// ErrNotFound: no account with that id or email.
	ErrNotFound = errors.New("user not found")
	// ErrEmailTaken: the normalised email already belongs to an account. Raised by the
	// repository from the database's unique index, never by a prior lookup.
	ErrEmailTaken = errors.New("email already registered")
	// ErrInvalidCredentials: unknown email or wrong password; deliberately one error for both.
	ErrInvalidCredentials = errors.New("invalid credentials")
	// ErrLastAdmin: the operation would leave the service without an administrator.
	ErrLastAdmin = errors.New("cannot remove the last admin")
)
