package mediahttp

import (
	"mime"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/domain/media/image"
	"github.com/acme/postsvc/ports"
)

// setCaching marks what a shared cache may keep. A private image is one user's: no cache
// keeps it. A public one may be kept but is revalidated on every use (no-cache), so making it
// private, or deleting it, takes effect on the next request even through a cache.
func setCaching(c *gin.Context, img *image.Image) {
	if img.IsPublic() {
		c.Header("Cache-Control", "public, no-cache")
		return
	}
	c.Header("Cache-Control", "private, no-store")
}

func (m *Module) content(c *gin.Context) {
	img, obj, err := m.svc.Content(c.Request.Context(), caller(c), c.Param("id"))
	if err == nil && (img == nil || obj == nil) {
		err = httpapi.ErrNoResult
	}
	if err != nil {
		httpapi.Fail(c, err)
		return
	}
	defer func() { _ = obj.Close() }()
	serve(c, img, obj, img.Content().Format.ContentType(), `"`+img.SHA256Hex()+`"`, img.Filename())
}

func (m *Module) thumbnail(c *gin.Context) {
	img, obj, contentType, err := m.svc.Thumbnail(c.Request.Context(), caller(c), c.Param("id"))
	if err == nil && (img == nil || obj == nil) {
		err = httpapi.ErrNoResult
	}
	if err != nil {
		httpapi.Fail(c, err)
		return
	}
	defer func() { _ = obj.Close() }()
	// The thumbnail is made from the image's bytes by fixed code: the image's hash names it.
	serve(c, img, obj, contentType, `"`+img.SHA256Hex()+`-thumb"`, "thumbnail-"+img.Filename())
}

// serve answers with a stored object through http.ServeContent, which handles Range,
// If-None-Match, If-Modified-Since and HEAD. The type is the stored one (set first, so
// ServeContent never sniffs), and the file name is sent as an RFC 6266 parameter that
// mime.FormatMediaType quotes or encodes, so no name can break the header.
func serve(c *gin.Context, img *image.Image, obj ports.Object, contentType, etag, filename string) {
	h := c.Writer.Header()
	setCaching(c, img)
	h.Set("Content-Type", contentType)
	h.Set("ETag", etag)
	h.Set("X-Content-Type-Options", "nosniff")
	if disposition := mime.FormatMediaType("inline", map[string]string{"filename": filename}); disposition != "" {
		h.Set("Content-Disposition", disposition)
	} else {
		h.Set("Content-Disposition", "inline")
	}
	http.ServeContent(c.Writer, c.Request, "", img.CreatedAt(), obj)
}
