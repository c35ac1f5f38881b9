package ecghttp

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/domain"
)

func (m *Module) upload(c *gin.Context) {
	p, ok := httpapi.PrincipalOf(c)
	if !ok {
		return
	}
	// The caller is checked (an admin gets 403) before any of the body is read.
	spool, err := m.svc.Receive(c.Request.Context(), p)
	if err != nil {
		httpapi.Fail(c, err)
		return
	}
	defer func() { _ = spool.Close() }()
	body, ok := httpapi.StreamJSON(c)
	if !ok {
		return
	}
	counted := &countingReader{r: body}
	draft, err := decodeECG(counted, spool)
	if err != nil {
		decodeFailed(c, err)
		return
	}
	httpapi.Received(c, time.Duration(float64(m.s.StoreTimePerMiB)*float64(counted.n)/(1<<20)))
	e, created, err := m.svc.Upload(c.Request.Context(), p, draft, spool)
	if err == nil && e == nil {
		err = httpapi.ErrNoResult
	}
	if err != nil {
		httpapi.Fail(c, err)
		return
	}
	c.Header("Location", location(string(e.ID())))
	status := http.StatusOK
	if created {
		status = http.StatusAccepted
	}
	httpapi.WriteJSON(c, status, summaryOf(e))
}

// decodeFailed answers an upload whose body could not be decoded: 400 for malformed JSON,
// the error's own status for a described one (422 for an invalid sample, 503 when its
// signals cannot be kept), and the kernel's answer to a body that could not be read (413,
// 408, 400).
func decodeFailed(c *gin.Context, err error) {
	var malformed *malformedError
	switch {
	case errors.As(err, &malformed):
		httpapi.Malformed(c, malformed.detail)
	case domain.KindOf(err) != domain.KindInternal:
		httpapi.Fail(c, err)
	default:
		httpapi.BodyError(c, err)
	}
}

// location is the path of the ECG id. The ids "." and ".." are allowed by the contract but
// are dot-segments, which a client resolving the Location (RFC 3986 section 5.2) would remove:
// an id made of dots only is sent percent-encoded, which resolution leaves alone and the
// router decodes back to the id.
func location(id string) string {
	if strings.Trim(id, ".") == "" {
		return "/api/v1/ecgs/" + strings.Repeat("%2E", len(id))
	}
	return "/api/v1/ecgs/" + url.PathEscape(id)
}

// countingReader counts the bytes read through it: the decoded size of the body.
type countingReader struct {
	r io.Reader
	n int64
}

func (cr *countingReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	cr.n += int64(n)
	return n, err
}

func (m *Module) list(c *gin.Context) {
	p, ok := httpapi.PrincipalOf(c)
	if !ok {
		return
	}
	req, _, ok := httpapi.PageQuery(c)
	if !ok {
		return
	}
	page, err := m.svc.List(c.Request.Context(), p, req)
	if err != nil {
		httpapi.Fail(c, err)
		return
	}
	out := pageJSON{ECGs: make([]summaryJSON, len(page.ECGs)), NextCursor: httpapi.NextCursor(page.NextCursor)}
	for i, e := range page.ECGs {
		out.ECGs[i] = summaryOf(e)
	}
	httpapi.WriteJSON(c, http.StatusOK, out)
}

func (m *Module) get(c *gin.Context) {
	p, ok := httpapi.PrincipalOf(c)
	if !ok {
		return
	}
	e, err := m.svc.Get(c.Request.Context(), p, c.Param("id"))
	if err == nil && e == nil {
		err = httpapi.ErrNoResult
	}
	if err != nil {
		httpapi.Fail(c, err)
		return
	}
	m.writeECG(c, p, e)
}

func (m *Module) insights(c *gin.Context) {
	p, ok := httpapi.PrincipalOf(c)
	if !ok {
		return
	}
	in, err := m.svc.Insights(c.Request.Context(), p, c.Param("id"))
	if err != nil {
		httpapi.Fail(c, err)
		return
	}
	httpapi.WriteJSON(c, http.StatusOK, insightsOf(in))
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
