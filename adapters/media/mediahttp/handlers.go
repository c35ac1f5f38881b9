package mediahttp

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/identity"
	mediaport "github.com/acme/postsvc/ports/media"
)

// caller is the principal of a route that serves anonymous callers too: the zero principal
// when no credential was presented.
func caller(c *gin.Context) identity.Principal {
	p, _ := httpapi.PrincipalFrom(c)
	return p
}

func (m *Module) list(c *gin.Context) {
	p, ok := httpapi.PrincipalOf(c)
	if !ok {
		return
	}
	page, query, ok := httpapi.PageQuery(c, "q", "visibility")
	if !ok {
		return
	}
	res, err := m.svc.List(c.Request.Context(), p, mediaport.ListRequest{PageRequest: page, Query: query["q"], Visibility: query["visibility"]})
	m.writePage(c, res, err)
}

func (m *Module) listPublic(c *gin.Context) {
	page, query, ok := httpapi.PageQuery(c, "q")
	if !ok {
		return
	}
	res, err := m.svc.ListPublic(c.Request.Context(), caller(c), mediaport.ListRequest{PageRequest: page, Query: query["q"]})
	m.writePage(c, res, err)
}

func (m *Module) writePage(c *gin.Context, res mediaport.Page, err error) {
	if err != nil {
		httpapi.Fail(c, err)
		return
	}
	httpapi.WriteJSON(c, http.StatusOK, pageJSON{Images: imagesOf(res.Images), NextCursor: httpapi.NextCursor(res.NextCursor)})
}

func (m *Module) get(c *gin.Context) {
	img, err := m.svc.Get(c.Request.Context(), caller(c), c.Param("id"))
	if err == nil && img == nil {
		err = httpapi.ErrNoResult
	}
	if err != nil {
		httpapi.Fail(c, err)
		return
	}
	setCaching(c, img)
	httpapi.WriteJSON(c, http.StatusOK, imageOf(img))
}

func (m *Module) update(c *gin.Context) {
	p, ok := httpapi.PrincipalOf(c)
	if !ok {
		return
	}
	var body changeJSON
	if !httpapi.Decode(c, &body) {
		return
	}
	draft, problem := body.draft()
	if problem != "" {
		httpapi.Malformed(c, problem)
		return
	}
	img, err := m.svc.Update(c.Request.Context(), p, c.Param("id"), draft)
	if err == nil && img == nil {
		err = httpapi.ErrNoResult
	}
	if err != nil {
		httpapi.Fail(c, err)
		return
	}
	httpapi.WriteJSON(c, http.StatusOK, imageOf(img))
}

func (m *Module) delete(c *gin.Context) {
	p, ok := httpapi.PrincipalOf(c)
	if !ok {
		return
	}
	if err := m.svc.Delete(c.Request.Context(), p, c.Param("id")); err != nil {
		httpapi.Fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (m *Module) deleteMany(c *gin.Context) {
	p, ok := httpapi.PrincipalOf(c)
	if !ok {
		return
	}
	var body bulkDeleteJSON
	if !httpapi.Decode(c, &body) {
		return
	}
	if body.IDs == nil {
		httpapi.Fail(c, domain.Invalid("ids", "is required: 1 to 100 image ids"))
		return
	}
	if err := m.svc.DeleteMany(c.Request.Context(), p, *body.IDs); err != nil {
		httpapi.Fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
