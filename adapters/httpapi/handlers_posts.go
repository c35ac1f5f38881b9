package httpapi

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/ports"
)

// headerCache tells whether a list page came from the in-memory cache.
const headerCache = "X-Cache"

func (s *server) addPost(c *gin.Context) {
	p, ok := s.principal(c)
	if !ok {
		return
	}
	var req newPostRequest
	if !s.decodeJSON(c, bodyOptions{limit: postBodyLimit}, &req) {
		return
	}
	created, err := s.posts.Add(c.Request.Context(), p, req.Text)
	if err == nil && created == nil {
		err = errNoResult
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Location", "/api/v1/posts/"+url.PathEscape(string(created.ID())))
	writePost(c, http.StatusCreated, created)
}

func (s *server) getPost(c *gin.Context) {
	p, ok := s.principal(c)
	if !ok {
		return
	}
	found, err := s.posts.Get(c.Request.Context(), p, c.Param("id"))
	if err == nil && found == nil {
		err = errNoResult
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	writePost(c, http.StatusOK, found)
}

func (s *server) deletePost(c *gin.Context) {
	p, ok := s.principal(c)
	if !ok {
		return
	}
	if err := s.posts.Delete(c.Request.Context(), p, c.Param("id")); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *server) listPosts(c *gin.Context) {
	p, ok := s.principal(c)
	if !ok {
		return
	}
	query, ok := queryParams(c, "limit", "cursor")
	if !ok {
		return
	}
	limit, err := queryLimit(query["limit"])
	if err != nil {
		s.fail(c, err)
		return
	}
	page, hit, err := s.posts.List(c.Request.Context(), p, ports.PageRequest{Cursor: query["cursor"], Limit: limit})
	if err != nil {
		s.fail(c, err)
		return
	}
	if hit {
		c.Header(headerCache, "HIT")
	} else {
		c.Header(headerCache, "MISS")
	}
	writePostPage(c, page)
}

// queryLimit reads the optional "limit" query parameter, as decoded by queryParams. Absent
// (or empty) is 0, which the use case reads as "the default". An explicit value must be an
// integer from 1 up; since 0 means "default" to the use case, an explicit 0 is refused here.
// The upper bound and the cursor are the use case's to check.
func queryLimit(raw string) (int, error) {
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n == 0 {
		return 0, domain.Invalid("limit", "must be an integer between 1 and 100")
	}
	return n, nil
}
