// Package ecghttp is the ECG context's HTTP module: a user uploads electrocardiograms, lists,
// reads and deletes them, and reads their insights. Uploads are decoded as a stream
// (decode.go), straight into packed blocks, so a 64 MiB body never sits in memory as JSON or
// as integers; an ECG with its signals is written back as a stream too (respond.go).
package ecghttp

import (
	"net/http"
	"time"

	"github.com/acme/postsvc/adapters/httpapi"
	ecgport "github.com/acme/postsvc/ports/ecg"
)

// Settings are the module's limits, from config.ECG.
type Settings struct {
	// MaxBodyBytes bounds an upload's body, and its size once decompressed.
	MaxBodyBytes int64
	// StoreTimePerMiB is the time an upload gets to be stored, per MiB of its decoded body,
	// on top of the request timeout.
	StoreTimePerMiB time.Duration
}

// Module serves the ECG routes.
type Module struct {
	svc ecgport.Service
	s   Settings
}

var _ httpapi.Module = (*Module)(nil)

// New builds the module on the ECG use case.
func New(svc ecgport.Service, s Settings) *Module { return &Module{svc: svc, s: s} }

// Register adds the ECG routes and documents their problem codes.
func (m *Module) Register(r *httpapi.Routes) {
	r.Handle(httpapi.Route{
		Method: http.MethodPost, Path: "/ecgs", Auth: httpapi.Required, Content: true,
		BodyLimit: m.s.MaxBodyBytes, Compressed: true, Handler: m.upload,
	})
	r.Handle(httpapi.Route{Method: http.MethodGet, Path: "/ecgs", Auth: httpapi.Required, Content: true, Handler: m.list})
	r.Handle(httpapi.Route{Method: http.MethodGet, Path: "/ecgs/:id", Auth: httpapi.Required, Content: true, Handler: m.get})
	r.Handle(httpapi.Route{Method: http.MethodGet, Path: "/ecgs/:id/insights", Auth: httpapi.Required, Content: true, Handler: m.insights})
	r.Handle(httpapi.Route{Method: http.MethodDelete, Path: "/ecgs/:id", Auth: httpapi.Required, Content: true, Handler: m.delete})
	r.Problems(
		httpapi.ProblemDoc{
			Code: "ecg_not_found", Status: http.StatusNotFound, Title: "ECG not found",
			Meaning: "The caller has no ECG with this id. Another user's ECG is answered the same way as a missing one.",
			Action:  "Check the id; the ECG may have been deleted.",
		},
		httpapi.ProblemDoc{
			Code: "ecg_exists", Status: http.StatusConflict, Title: "ECG exists",
			Meaning: "The caller already has an ECG with this id, with different content. Nothing was changed. " +
				"(Uploading the same content again is not an error: it is answered 200 with the stored ECG.)",
			Action: "Upload it under another id, or delete the stored one first.",
		},
	)
}
