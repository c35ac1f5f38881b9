package user

import "github.com/acme/postsvc/domain"

// Role decides what an account may do. Users hold content; admins manage accounts and hold
// no content.
type Role string

const (
	RoleUser  Role = "user"
	RoleAdmin Role = "admin"
)

// ParseRole accepts exactly "user" or "admin".
func ParseRole(raw string) (Role, error) {
	switch Role(raw) {
	case RoleUser, RoleAdmin:
		return Role(raw), nil
	}
	return "", domain.Invalid("role", `must be "user" or "admin"`)
}

// IsAdmin reports whether r is the administrator role.
func (r Role) IsAdmin() bool { return r == RoleAdmin }
