package accountshttp

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/ports/accounts"
)

func (m *Module) signup(c *gin.Context) {
	var req credentialsRequest
	if !httpapi.Decode(c, &req) {
		return
	}
	res, err := m.auth.Signup(c.Request.Context(), accounts.SignupInput{
		Email: req.Email, Password: req.Password, Name: req.Name, ClientAddr: httpapi.ClientAddress(c),
	})
	m.sendSession(c, http.StatusCreated, res, err)
}

func (m *Module) login(c *gin.Context) {
	var req credentialsRequest
	if !httpapi.Decode(c, &req) {
		return
	}
	res, err := m.auth.Login(c.Request.Context(), accounts.LoginInput{
		Email: req.Email, Password: req.Password, ClientAddr: httpapi.ClientAddress(c),
	})
	m.sendSession(c, http.StatusOK, res, err)
}

func (m *Module) refresh(c *gin.Context) {
	var req refreshRequest
	if !httpapi.Decode(c, &req) {
		return
	}
	res, err := m.auth.Refresh(c.Request.Context(), req.RefreshToken)
	m.sendSession(c, http.StatusOK, res, err)
}

func (m *Module) logout(c *gin.Context) {
	p, ok := httpapi.PrincipalOf(c)
	if !ok {
		return
	}
	var req refreshRequest
	if !httpapi.DecodeOptional(c, &req) {
		return
	}
	if err := m.auth.Logout(c.Request.Context(), p, req.RefreshToken); err != nil {
		httpapi.Fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (m *Module) me(c *gin.Context) {
	p, ok := httpapi.PrincipalOf(c)
	if !ok {
		return
	}
	u, err := m.auth.Me(c.Request.Context(), p)
	m.sendUser(c, http.StatusOK, u, err)
}

func (m *Module) updateMe(c *gin.Context) {
	p, ok := httpapi.PrincipalOf(c)
	if !ok {
		return
	}
	var req profilePatchRequest
	if !httpapi.Decode(c, &req) {
		return
	}
	name, problem := httpapi.OptionalString("name", req.Name)
	if problem != "" {
		httpapi.Malformed(c, problem)
		return
	}
	u, err := m.auth.UpdateMe(c.Request.Context(), p, accounts.ProfileUpdate{Name: name})
	m.sendUser(c, http.StatusOK, u, err)
}

// sendSession answers a session, or the use case's error. Token responses must not be
// stored by caches (RFC 6749, section 5.1).
func (m *Module) sendSession(c *gin.Context, status int, res accounts.AuthResult, err error) {
	if err == nil && res.User == nil {
		err = httpapi.ErrNoResult
	}
	if err != nil {
		httpapi.Fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	httpapi.WriteJSON(c, status, toSession(res))
}

// sendUser answers a user, or the use case's error.
func (m *Module) sendUser(c *gin.Context, status int, u *user.User, err error) {
	if err == nil && u == nil {
		err = httpapi.ErrNoResult
	}
	if err != nil {
		httpapi.Fail(c, err)
		return
	}
	httpapi.WriteJSON(c, status, toUser(u))
}
