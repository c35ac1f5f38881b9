// Package accountshttp is the accounts context's HTTP module: sign-up, login, sessions, the
// caller's profile and the administrators' user directory. It registers its routes with the
// HTTP kernel (adapters/httpapi), which decodes, authenticates and answers errors for it.
package accountshttp

import (
	"net/http"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports/accounts"
)

// Module serves the accounts context's routes.
type Module struct {
	auth  accounts.AuthService
	admin accounts.AdminService
}

var _ httpapi.Module = (*Module)(nil)

// New builds the module on the accounts use cases.
func New(auth accounts.AuthService, admin accounts.AdminService) *Module {
	return &Module{auth: auth, admin: admin}
}

// sessionOnly are the routes a personal API key may not call: those that manage sessions.
var sessionOnly = []identity.CredentialKind{identity.CredentialSession}

// Register adds the accounts routes and documents their problem codes.
func (m *Module) Register(r *httpapi.Routes) {
	small := httpapi.SmallBodyLimit
	r.Handle(httpapi.Route{Method: http.MethodPost, Path: "/auth/signup", BodyLimit: small, Handler: m.signup})
	r.Handle(httpapi.Route{Method: http.MethodPost, Path: "/auth/login", BodyLimit: small, Handler: m.login})
	r.Handle(httpapi.Route{Method: http.MethodPost, Path: "/auth/refresh", BodyLimit: small, Handler: m.refresh})
	r.Handle(httpapi.Route{Method: http.MethodPost, Path: "/auth/logout", Auth: httpapi.Required, Credentials: sessionOnly, BodyLimit: small, Handler: m.logout})
	r.Handle(httpapi.Route{Method: http.MethodGet, Path: "/users/me", Auth: httpapi.Required, Handler: m.me})
	r.Handle(httpapi.Route{Method: http.MethodPatch, Path: "/users/me", Auth: httpapi.Required, BodyLimit: small, Handler: m.updateMe})

	r.Handle(httpapi.Route{Method: http.MethodGet, Path: "/admin/users", Auth: httpapi.Required, Handler: m.listUsers})
	r.Handle(httpapi.Route{Method: http.MethodPost, Path: "/admin/users", Auth: httpapi.Required, BodyLimit: small, Handler: m.createUser})
	r.Handle(httpapi.Route{Method: http.MethodGet, Path: "/admin/users/:id", Auth: httpapi.Required, Handler: m.getUser})
	r.Handle(httpapi.Route{Method: http.MethodPatch, Path: "/admin/users/:id", Auth: httpapi.Required, BodyLimit: small, Handler: m.updateUser})
	r.Handle(httpapi.Route{Method: http.MethodDelete, Path: "/admin/users/:id", Auth: httpapi.Required, Handler: m.deleteUser})

	r.Problems(
		httpapi.ProblemDoc{Code: "email_taken", Status: http.StatusConflict, Title: "Email already registered",
			Meaning: "An account with this email address already exists. Addresses are compared without regard to case.",
			Action:  "Log in with that address, or use another one."},
		httpapi.ProblemDoc{Code: "invalid_credentials", Status: http.StatusUnauthorized, Title: "Invalid credentials",
			Meaning: "The email address or the password is wrong. The answer is the same for both, so it does not reveal which accounts exist.",
			Action:  "Ask for the credentials again. Repeated failures for one account or from one address are throttled (too_many_attempts)."},
		httpapi.ProblemDoc{Code: "invalid_refresh_token", Status: http.StatusUnauthorized, Title: "Invalid refresh token",
			Meaning: "The refresh token is unknown, expired, or already used. Using a refresh token a second time revokes its whole session.",
			Action:  "Log in again to open a new session. After each refresh, keep only the newest refresh token."},
		httpapi.ProblemDoc{Code: "user_not_found", Status: http.StatusNotFound, Title: "User not found",
			Meaning: "There is no account with this id.",
			Action:  "Check the id; the account may have been deleted."},
		httpapi.ProblemDoc{Code: "last_admin", Status: http.StatusConflict, Title: "Last admin",
			Meaning: "The change would leave the service without an administrator: the last admin can be neither demoted nor deleted.",
			Action:  "Make another account an admin first, then retry."},
	)
}
