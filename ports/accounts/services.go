// Package accounts declares the accounts context's ports: its repositories, its password
// hasher and token issuer, and the services it offers (sign-up, sessions, administration).
package accounts

import (
	"context"

	"github.com/acme/postsvc/domain/accounts/apikey"
	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
)

// AuthService is the accounts use case: signup, login, sessions and the caller's own profile.
type AuthService interface {
	Signup(ctx context.Context, in SignupInput) (AuthResult, error)
	Login(ctx context.Context, in LoginInput) (AuthResult, error)
	Refresh(ctx context.Context, refreshToken string) (AuthResult, error)
	// Logout revokes the caller's session. A refresh token, when given, must belong to it.
	Logout(ctx context.Context, p identity.Principal, refreshToken string) error
	// Authenticate verifies an access token (ports.Authenticator, the session scheme) and
	// loads the caller's current state.
	ports.Authenticator
	Me(ctx context.Context, p identity.Principal) (*user.User, error)
	UpdateMe(ctx context.Context, p identity.Principal, in ProfileUpdate) (*user.User, error)
}

// SignupInput is a signup request as the client sent it; the service validates every field.
// ClientAddr is the caller's address, for throttling signups and sharing the hasher fairly.
type SignupInput struct {
	Email      string
	Password   string
	Name       string
	ClientAddr string
}

// LoginInput is a login attempt. ClientAddr is the caller's address, for throttling and for
// sharing the hasher fairly.
type LoginInput struct {
	Email      string
	Password   string
	ClientAddr string
}

// ProfileUpdate carries the fields a caller may change on itself; nil leaves a field alone.
type ProfileUpdate struct {
	Name *string
}

// AuthResult is an opened or refreshed session.
type AuthResult struct {
	AccessToken      string
	ExpiresInSeconds int64
	RefreshToken     string
	User             *user.User
}

// AdminService is the user directory for administrators.
type AdminService interface {
	ListUsers(ctx context.Context, p identity.Principal, req UserListRequest) (UserPage, error)
	GetUser(ctx context.Context, p identity.Principal, id string) (*user.User, error)
	CreateUser(ctx context.Context, p identity.Principal, in NewUserInput) (*user.User, error)
	UpdateUser(ctx context.Context, p identity.Principal, id string, in UserUpdate) (*user.User, error)
	// DeleteUser deletes an account and, through every ports.UserDataOwner, its data in all
	// contexts, in one transaction; what lives outside the database is cleaned by a job.
	DeleteUser(ctx context.Context, p identity.Principal, id string) error
}

// UserListRequest filters and pages the directory.
type UserListRequest struct {
	Query  string
	Cursor string
	Limit  int
}

// UserPage is one page of the directory.
type UserPage struct {
	Users      []*user.User
	NextCursor string
}

// NewUserInput creates an account with a chosen role (admin directory and command line).
// ClientAddr is the admin's address, for sharing the hasher fairly; the command line has none.
type NewUserInput struct {
	Email      string
	Password   string
	Name       string
	Role       string
	ClientAddr string
}

// UserUpdate changes an account's name and/or role; nil leaves a field alone.
type UserUpdate struct {
	Name *string
	Role *string
}

// APIKeyService manages the caller's personal API keys and authenticates requests made with
// one (ports.Authenticator, the "pat_" scheme). Keys are managed only with a login session.
type APIKeyService interface {
	// Create makes a key for the caller; the result carries its secret, never shown again.
	// apikey.ErrTooMany when the caller already holds apikey.MaxActivePerUser active keys.
	Create(ctx context.Context, p identity.Principal, in NewAPIKeyInput) (CreatedAPIKey, error)
	// List returns the caller's keys, newest first, without their secrets.
	List(ctx context.Context, p identity.Principal) ([]*apikey.Key, error)
	// Delete deletes one of the caller's keys; it stops working on the very next request.
	// apikey.ErrNotFound for an unknown id or another user's key.
	Delete(ctx context.Context, p identity.Principal, id string) error
	ports.Authenticator
}

// NewAPIKeyInput is a key creation request. ExpiresInDays nil: the key never expires.
type NewAPIKeyInput struct {
	Name          string
	ExpiresInDays *int
}

// CreatedAPIKey is a new key and its secret.
type CreatedAPIKey struct {
	Key    *apikey.Key
	Secret string
}
