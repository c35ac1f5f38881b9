package accountshttp

import (
	"encoding/json"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/ports/accounts"
)

// Request bodies. Every field is a plain JSON string; fields a PATCH may omit are kept raw so
// that "absent" and "not a string" (including null) can be told apart.
type (
	credentialsRequest struct {
		Email    string `json:"email"`
		Password string `json:"password"`
		Name     string `json:"name"`
	}
	refreshRequest struct {
		RefreshToken string `json:"refresh_token"`
	}
	profilePatchRequest struct {
		Name json.RawMessage `json:"name"`
	}
	newUserRequest struct {
		Email    string `json:"email"`
		Password string `json:"password"`
		Name     string `json:"name"`
		Role     string `json:"role"`
	}
	userPatchRequest struct {
		Name json.RawMessage `json:"name"`
		Role json.RawMessage `json:"role"`
	}
)

// Response bodies. Domain objects are always mapped field by field, so nothing the contract
// does not list (a password hash above all) can leak into a response.
type (
	userResponse struct {
		ID        string `json:"id"`
		Email     string `json:"email"`
		Name      string `json:"name"`
		Role      string `json:"role"`
		CreatedAt string `json:"created_at"`
	}
	sessionResponse struct {
		AccessToken  string       `json:"access_token"`
		TokenType    string       `json:"token_type"`
		ExpiresIn    int64        `json:"expires_in"`
		RefreshToken string       `json:"refresh_token"`
		User         userResponse `json:"user"`
	}
	userPageResponse struct {
		Users      []userResponse `json:"users"`
		NextCursor *string        `json:"next_cursor"`
	}
)

func toUser(u *user.User) userResponse {
	return userResponse{
		ID:        string(u.ID()),
		Email:     u.Email().String(),
		Name:      u.Name(),
		Role:      string(u.Role()),
		CreatedAt: httpapi.Timestamp(u.CreatedAt()),
	}
}

func toSession(r accounts.AuthResult) sessionResponse {
	return sessionResponse{
		AccessToken:  r.AccessToken,
		TokenType:    "Bearer",
		ExpiresIn:    r.ExpiresInSeconds,
		RefreshToken: r.RefreshToken,
		User:         toUser(r.User),
	}
}

func toUserPage(page accounts.UserPage) userPageResponse {
	out := userPageResponse{Users: make([]userResponse, 0, len(page.Users)), NextCursor: httpapi.NextCursor(page.NextCursor)}
	for _, u := range page.Users {
		out.Users = append(out.Users, toUser(u))
	}
	return out
}
