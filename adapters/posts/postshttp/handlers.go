package postshttp

import (
	"net/http"
	"net/url"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/gin-gonic/gin"
)

func (m *Module) addPost(c *gin.Context) {
	p, ok := httpapi.PrincipalOf(c)
	if !ok {
		return
	}
	var req newPostRequest
	if !httpapi.Decode(c, &req) {
		return
	}
	created, err := m.posts.Add(c.Request.Context(), p, req.Text)
	if err == nil && created == nil {
		err = httpapi.ErrNoResult
	}
	if err != nil {
		httpapi.Fail(c, err)
		return
	}
	c.Header("Location", "/api/v1/posts/"+url.PathEscape(string(created.ID())))
	writePost(c, http.StatusCreated, created)
}

func (m *Module) getPost(c *gin.Context) {
	p, ok := httpapi.PrincipalOf(c)
	if !ok {
		return
	}
	found, err := m.posts.Get(c.Request.Context(), p, c.Param("id"))
	if err == nil && found == nil {
		err = httpapi.ErrNoResult
	}
	if err != nil {
		httpapi.Fail(c, err)
		return
	}
	writePost(c, http.StatusOK, found)
}

func (m *Module) deletePost(c *gin.Context) {
	p, ok := httpapi.PrincipalOf(c)
	if !ok {
		return
	}
	if err := m.posts.Delete(c.Request.Context(), p, c.Param("id")); err != nil {
		httpapi.Fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (m *Module) listPosts(c *gin.Context) {
	p, ok := httpapi.PrincipalOf(c)
	if !ok {
		return
	}
	req, _, ok := httpapi.PageQuery(c)
	if !ok {
		return
	}
	page, hit, err := m.posts.List(c.Request.Context(), p, req)
	if err != nil {
		httpapi.Fail(c, err)
		return
	}
	if hit {
		c.Header(headerCache, "HIT")
	} else {
		c.Header(headerCache, "MISS")
	}
	writePostPage(c, page)
}
