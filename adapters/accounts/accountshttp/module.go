// Package accountshttp is the accounts context's HTTP module: sign-up, login, sessions, the
// caller's profile, personal API keys and the administrators' user directory. It registers its
// routes with the HTTP kernel (adapters/httpapi), which decodes, authenticates and answers
// errors for it.
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
	keys  accounts.APIKeyService
}

var _ httpapi.Module = (*Module)(nil)

// New builds the module on the accounts use cases.
func New(auth accounts.AuthService, admin accounts.AdminService, keys accounts.APIKeyService) *Module {
	return &Module{auth: auth, admin: admin, keys: keys}
}

// sessionOnly are the routes a personal API key may not call: those that manage sessions and
// keys, so that a leaked key can neither end its owner's sessions nor mint or delete keys.
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

	r.Handle(httpapi.Route{Method: http.MethodPost, Path: "/api-keys", Auth: httpapi.Required, Credentials: sessionOnly, BodyLimit: small, Handler: m.createAPIKey})
	r.Handle(httpapi.Route{Method: http.MethodGet, Path: "/api-keys", Auth: httpapi.Required, Credentials: sessionOnly, Handler: m.listAPIKeys})
	r.Handle(httpapi.Route{Method: http.MethodDelete, Path: "/api-keys/:id", Auth: httpapi.Required, Credentials: sessionOnly, Handler: m.deleteAPIKey})

	r.Handle(httpapi.Route{Method: http.MethodGet, Path: "/admin/users", Auth: httpapi.Required, Admin: true, Handler: m.listUsers})
	r.Handle(httpapi.Route{Method: http.MethodPost, Path: "/admin/users", Auth: httpapi.Required, Admin: true, BodyLimit: small, Handler: m.createUser})
	r.Handle(httpapi.Route{Method: http.MethodGet, Path: "/admin/users/:id", Auth: httpapi.Required, Admin: true, Handler: m.getUser})
	r.Handle(httpapi.Route{Method: http.MethodPatch, Path: "/admin/users/:id", Auth: httpapi.Required, Admin: true, BodyLimit: small, Handler: m.updateUser})
	r.Handle(httpapi.Route{Method: http.MethodDelete, Path: "/admin/users/:id", Auth: httpapi.Required, Admin: true, Handler: m.deleteUser})

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
		httpapi.ProblemDoc{Code: "too_many_keys", Status: http.StatusConflict, Title: "Too many API keys",
			Meaning: "You already hold 25 personal API keys that have not expired, the most one account may hold.",
			Action:  "Delete a key you no longer use (DELETE /api/v1/api-keys/{id}), then create the new one."},
		httpapi.ProblemDoc{Code: "api_key_not_found", Status: http.StatusNotFound, Title: "API key not found",
			Meaning: "You have no personal API key with this id. Another account's key is answered the same way.",
			Action:  "List your keys (GET /api/v1/api-keys) for their ids; the key may have been deleted already."},
		httpapi.ProblemDoc{Code: "last_admin", Status: http.StatusConflict, Title: "Last admin",
			Meaning: "The change would leave the service without an administrator: the last admin can be neither demoted nor deleted.",
			Action:  "Make another account an admin first, then retry."},
	)
}
