// Package mediahttp is the media context's HTTP module: users upload images as multipart
// streams (upload.go), list, search, describe and delete them; anyone reads public images,
// served from object storage with ETag, Range and conditional requests (content.go).
package mediahttp

import (
	"net/http"
	"time"

	"github.com/acme/postsvc/adapters/httpapi"
	mediaport "github.com/acme/postsvc/ports/media"
)

// Settings are the module's limits, from config.Media.
type Settings struct {
	// MaxFileBytes bounds one file of an upload, as sent.
	MaxFileBytes int64
	// MaxFiles bounds the files of one upload request.
	MaxFiles int
	// MaxRequestBytes bounds an upload request's body.
	MaxRequestBytes int64
	// UploadTimeout bounds cleaning and storing the files of an upload request as they
	// arrive. Its database steps (authentication, the quota check, the commit) have the
	// service's request timeout, as every request's do, so that an outage is answered 503 as
	// soon as elsewhere.
	UploadTimeout time.Duration
}

// Module serves the image routes.
type Module struct {
	svc mediaport.Service
	s   Settings
}

var _ httpapi.Module = (*Module)(nil)

// New builds the module on the media use case.
func New(svc mediaport.Service, s Settings) *Module { return &Module{svc: svc, s: s} }

// bulkBodyLimit bounds a bulk delete's body: 100 ids with ample room for escaping.
const bulkBodyLimit = 64 << 10

// Register adds the image routes and documents their problem codes.
func (m *Module) Register(r *httpapi.Routes) {
	r.Handle(httpapi.Route{
		Method: http.MethodPost, Path: "/images", Auth: httpapi.Required, Content: true,
		// No Timeout: see upload, which gives only the files' work m.s.UploadTimeout.
		BodyLimit: m.s.MaxRequestBytes, Handler: m.upload,
	})
	r.Handle(httpapi.Route{Method: http.MethodGet, Path: "/images", Auth: httpapi.Required, Content: true, Handler: m.list})
	r.Handle(httpapi.Route{Method: http.MethodGet, Path: "/images/public", Auth: httpapi.Optional, Content: true, Handler: m.listPublic})
	r.Handle(httpapi.Route{Method: http.MethodGet, Path: "/images/:id", Auth: httpapi.Optional, Content: true, Handler: m.get})
	r.Handle(httpapi.Route{Method: http.MethodGet, Path: "/images/:id/content", Auth: httpapi.Optional, Content: true, Handler: m.content})
	r.Handle(httpapi.Route{Method: http.MethodGet, Path: "/images/:id/thumbnail", Auth: httpapi.Optional, Content: true, Handler: m.thumbnail})
	r.Handle(httpapi.Route{
		Method: http.MethodPatch, Path: "/images/:id", Auth: httpapi.Required, Content: true,
		BodyLimit: httpapi.SmallBodyLimit, Handler: m.update,
	})
	r.Handle(httpapi.Route{Method: http.MethodDelete, Path: "/images/:id", Auth: httpapi.Required, Content: true, Handler: m.delete})
	r.Handle(httpapi.Route{
		Method: http.MethodPost, Path: "/images/delete", Auth: httpapi.Required, Content: true,
		BodyLimit: bulkBodyLimit, Handler: m.deleteMany,
	})
	r.Problems(
		httpapi.ProblemDoc{
			Code: "image_not_found", Status: http.StatusNotFound, Title: "Image not found",
			Meaning: "There is no such image, or it is private and not the caller's: both are answered the same way. " +
				"A bulk delete lists the ids that are not the caller's under \"ids\" and deletes nothing.",
			Action: "Check the id; the image may have been deleted or made private.",
		},
	)
}
