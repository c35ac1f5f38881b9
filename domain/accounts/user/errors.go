package user

import (
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/identity"
)

// The accounts context's failures. Each describes itself (kind, stable code, message for
// people), so the HTTP kernel answers it without knowing this package.
var (
	// ErrNotFound: no account with that id or email. It is the identity kernel's error, which
	// every context returns for a user that does not exist.
	ErrNotFound = identity.ErrUnknownUser
	// ErrEmailTaken: the normalised email already belongs to an account. Raised by the
	// repository from the database's unique index, never by a prior lookup.
	ErrEmailTaken = domain.NewError(domain.KindConflict, "email_taken", "An account with this email already exists.")
	// ErrInvalidCredentials: unknown email or wrong password; deliberately one error for both.
	ErrInvalidCredentials = domain.NewError(domain.KindUnauthenticated, "invalid_credentials", //nolint:gosec // G101: a problem code, not a credential
		"The email or the password is incorrect.")
	// ErrLastAdmin: the operation would leave the service without an administrator.
	ErrLastAdmin = domain.NewError(domain.KindConflict, "last_admin", "The service must keep at least one admin.")
)
