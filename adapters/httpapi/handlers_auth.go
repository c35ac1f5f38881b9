package httpapi

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/domain/user"
	"github.com/acme/postsvc/ports"
)

// errNoResult flags a use case that returned neither a result nor an error.
var errNoResult = errors.New("httpapi: use case returned no result")

func (s *server) signup(c *gin.Context) {
	var req credentialsRequest
	if !s.decodeJSON(c, bodyOptions{limit: smallBodyLimit}, &req) {
		return
	}
	res, err := s.auth.Signup(c.Request.Context(), ports.SignupInput{
		Email: req.Email, Password: req.Password, Name: req.Name, ClientAddr: c.ClientIP(),
	})
	s.sendSession(c, http.StatusCreated, res, err)
}

func (s *server) login(c *gin.Context) {
	var req credentialsRequest
	if !s.decodeJSON(c, bodyOptions{limit: smallBodyLimit}, &req) {
		return
	}
	res, err := s.auth.Login(c.Request.Context(), ports.LoginInput{
		Email: req.Email, Password: req.Password, ClientAddr: c.ClientIP(),
	})
	s.sendSession(c, http.StatusOK, res, err)
}

func (s *server) refresh(c *gin.Context) {
	var req refreshRequest
	if !s.decodeJSON(c, bodyOptions{limit: smallBodyLimit}, &req) {
		return
	}
	res, err := s.auth.Refresh(c.Request.Context(), req.RefreshToken)
	s.sendSession(c, http.StatusOK, res, err)
}

func (s *server) logout(c *gin.Context) {
	p, ok := s.principal(c)
	if !ok {
		return
	}
	var req refreshRequest
	if !s.decodeJSON(c, bodyOptions{limit: smallBodyLimit, optional: true}, &req) {
		return
	}
	if err := s.auth.Logout(c.Request.Context(), p, req.RefreshToken); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *server) me(c *gin.Context) {
	p, ok := s.principal(c)
	if !ok {
		return
	}
	u, err := s.auth.Me(c.Request.Context(), p)
	s.sendUser(c, http.StatusOK, u, err)
}

func (s *server) updateMe(c *gin.Context) {
	p, ok := s.principal(c)
	if !ok {
		return
	}
	var req profilePatchRequest
	if !s.decodeJSON(c, bodyOptions{limit: smallBodyLimit}, &req) {
		return
	}
	name, problem := optionalString("name", req.Name)
	if problem != "" {
		malformed(c, problem)
		return
	}
	u, err := s.auth.UpdateMe(c.Request.Context(), p, ports.ProfileUpdate{Name: name})
	s.sendUser(c, http.StatusOK, u, err)
}

// sendSession answers a session, or the use case's error. Token responses must not be
// stored by caches (RFC 6749, section 5.1).
func (s *server) sendSession(c *gin.Context, status int, res ports.AuthResult, err error) {
	if err == nil && res.User == nil {
		err = errNoResult
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	s.writeJSON(c, status, toSession(res))
}

// sendUser answers a user, or the use case's error.
func (s *server) sendUser(c *gin.Context, status int, u *user.User, err error) {
	if err == nil && u == nil {
		err = errNoResult
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	s.writeJSON(c, status, toUser(u))
}
