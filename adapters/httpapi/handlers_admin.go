package httpapi

import (
	"net/http"
	"net/url"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/ports"
)

func (s *server) listUsers(c *gin.Context) {
	p, ok := s.principal(c)
	if !ok {
		return
	}
	query, ok := queryParams(c, "q", "limit", "cursor")
	if !ok {
		return
	}
	limit, err := queryLimit(query["limit"])
	if err != nil {
		s.fail(c, err)
		return
	}
	page, err := s.admin.ListUsers(c.Request.Context(), p, ports.UserListRequest{
		Query: query["q"], Cursor: query["cursor"], Limit: limit,
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	s.writeJSON(c, http.StatusOK, toUserPage(page))
}

func (s *server) getUser(c *gin.Context) {
	p, ok := s.principal(c)
	if !ok {
		return
	}
	u, err := s.admin.GetUser(c.Request.Context(), p, c.Param("id"))
	s.sendUser(c, http.StatusOK, u, err)
}

func (s *server) createUser(c *gin.Context) {
	p, ok := s.principal(c)
	if !ok {
		return
	}
	var req newUserRequest
	if !s.decodeJSON(c, bodyOptions{limit: smallBodyLimit}, &req) {
		return
	}
	u, err := s.admin.CreateUser(c.Request.Context(), p, ports.NewUserInput{
		Email: req.Email, Password: req.Password, Name: req.Name, Role: req.Role, ClientAddr: c.ClientIP(),
	})
	if err == nil && u != nil {
		c.Header("Location", "/api/v1/admin/users/"+url.PathEscape(string(u.ID())))
	}
	s.sendUser(c, http.StatusCreated, u, err)
}

func (s *server) updateUser(c *gin.Context) {
	p, ok := s.principal(c)
	if !ok {
		return
	}
	var req userPatchRequest
	if !s.decodeJSON(c, bodyOptions{limit: smallBodyLimit}, &req) {
		return
	}
	name, problem := optionalString("name", req.Name)
	if problem != "" {
		malformed(c, problem)
		return
	}
	role, problem := optionalString("role", req.Role)
	if problem != "" {
		malformed(c, problem)
		return
	}
	u, err := s.admin.UpdateUser(c.Request.Context(), p, c.Param("id"), ports.UserUpdate{Name: name, Role: role})
	s.sendUser(c, http.StatusOK, u, err)
}

func (s *server) deleteUser(c *gin.Context) {
	p, ok := s.principal(c)
	if !ok {
		return
	}
	if err := s.admin.DeleteUser(c.Request.Context(), p, c.Param("id")); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
