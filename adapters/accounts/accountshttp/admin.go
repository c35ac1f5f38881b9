package accountshttp

import (
	"net/http"
	"net/url"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/ports/accounts"
	"github.com/gin-gonic/gin"
)

func (m *Module) listUsers(c *gin.Context) {
	p, ok := httpapi.PrincipalOf(c)
	if !ok {
		return
	}
	req, query, ok := httpapi.PageQuery(c, "q")
	if !ok {
		return
	}
	page, err := m.admin.ListUsers(c.Request.Context(), p, accounts.UserListRequest{
		Query: query["q"], Cursor: req.Cursor, Limit: req.Limit,
	})
	if err != nil {
		httpapi.Fail(c, err)
		return
	}
	httpapi.WriteJSON(c, http.StatusOK, toUserPage(page))
}

func (m *Module) getUser(c *gin.Context) {
	p, ok := httpapi.PrincipalOf(c)
	if !ok {
		return
	}
	u, err := m.admin.GetUser(c.Request.Context(), p, c.Param("id"))
	m.sendUser(c, http.StatusOK, u, err)
}

func (m *Module) createUser(c *gin.Context) {
	p, ok := httpapi.PrincipalOf(c)
	if !ok {
		return
	}
	var req newUserRequest
	if !httpapi.Decode(c, &req) {
		return
	}
	u, err := m.admin.CreateUser(c.Request.Context(), p, accounts.NewUserInput{
		Email: req.Email, Password: req.Password, Name: req.Name, Role: req.Role, ClientAddr: httpapi.ClientAddress(c),
	})
	if err == nil && u != nil {
		c.Header("Location", "/api/v1/admin/users/"+url.PathEscape(string(u.ID())))
	}
	m.sendUser(c, http.StatusCreated, u, err)
}

func (m *Module) updateUser(c *gin.Context) {
	p, ok := httpapi.PrincipalOf(c)
	if !ok {
		return
	}
	var req userPatchRequest
	if !httpapi.Decode(c, &req) {
		return
	}
	name, problem := httpapi.OptionalString("name", req.Name)
	if problem != "" {
		httpapi.Malformed(c, problem)
		return
	}
	role, problem := httpapi.OptionalString("role", req.Role)
	if problem != "" {
		httpapi.Malformed(c, problem)
		return
	}
	u, err := m.admin.UpdateUser(c.Request.Context(), p, c.Param("id"), accounts.UserUpdate{Name: name, Role: role})
	m.sendUser(c, http.StatusOK, u, err)
}

func (m *Module) deleteUser(c *gin.Context) {
	p, ok := httpapi.PrincipalOf(c)
	if !ok {
		return
	}
	if err := m.admin.DeleteUser(c.Request.Context(), p, c.Param("id")); err != nil {
		httpapi.Fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
