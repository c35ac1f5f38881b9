package ports

import (
	"context"

	"github.com/acme/postsvc/domain/post"
	"github.com/acme/postsvc/domain/session"
	"github.com/acme/postsvc/domain/user"
)

// AuthService is the accounts use case: signup, login, sessions and the caller's own profile.
type AuthService interface {
	Signup(ctx context.Context, in SignupInput) (AuthResult, error)
	Login(ctx context.Context, in LoginInput) (AuthResult, error)
	Refresh(ctx context.Context, refreshToken string) (AuthResult, error)
	// Logout revokes the caller's session. A refresh token, when given, must belong to it.
	Logout(ctx context.Context, p session.Principal, refreshToken string) error
	// Authenticate verifies an access token and loads the caller's current state.
	Authenticate(ctx context.Context, accessToken string) (session.Principal, error)
	Me(ctx context.Context, p session.Principal) (*user.User, error)
	UpdateMe(ctx context.Context, p session.Principal, in ProfileUpdate) (*user.User, error)
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

// PostService is the posts use case. Every method acts on the caller's own posts only; an
// admin's principal is refused with domain.ErrForbidden.
type PostService interface {
	Add(ctx context.Context, p session.Principal, text string) (*post.Post, error)
	Get(ctx context.Context, p session.Principal, id string) (*post.Post, error)
	Delete(ctx context.Context, p session.Principal, id string) error
	// List returns a page of the caller's posts; hit reports whether it came from the cache.
	List(ctx context.Context, p session.Principal, req PageRequest) (page PostPage, hit bool, err error)
}

// PageRequest asks for one page. Limit 0 means the default; Cursor "" means the first page.
type PageRequest struct {
	Cursor string
	Limit  int
}

// AdminService is the user directory for administrators.
type AdminService interface {
	ListUsers(ctx context.Context, p session.Principal, req UserListRequest) (UserPage, error)
	GetUser(ctx context.Context, p session.Principal, id string) (*user.User, error)
	CreateUser(ctx context.Context, p session.Principal, in NewUserInput) (*user.User, error)
	UpdateUser(ctx context.Context, p session.Principal, id string, in UserUpdate) (*user.User, error)
	DeleteUser(ctx context.Context, p session.Principal, id string) error
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
