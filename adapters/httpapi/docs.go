package httpapi

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"
	swaggerui "github.com/swaggest/swgui/v5/static"
)

// DocsContentSecurityPolicy is the Content-Security-Policy of /docs and its assets (set by
// securityHeaders). The page loads its scripts and style sheets from /docs only and runs no
// inline script (its start-up code is /docs/init.js), so script-src 'self' is enough and no
// 'unsafe-eval' is needed. Swagger UI needs data: images (the icons of its style sheet), fetch
// to this origin (the document and "Try it out") and, in some views, inline styles.
// test/e2e/browser_test.go fails on any violation of it.
const DocsContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// docsIndex is the asset name of the page itself.
const docsIndex = "index.html"

// docsPageFS holds the page, its start-up script and its style sheet; the Swagger UI files
// come from the swgui module, which embeds the official dist files (gzip-compressed).
//
//go:embed swaggerui
var docsPageFS embed.FS

// docsAsset is one file served under /docs, read once from the embedded file systems.
type docsAsset struct {
	contentType string
	// body is the file as served to clients that accept gzip when gzipped is set, and as is
	// otherwise.
	body    []byte
	gzipped bool
	// plain decompresses a gzipped body once, for the rare client that does not accept gzip.
	plain func() ([]byte, error)
	etag  string
}

// docsAssets maps file names under /docs to their content. Only these names are served.
var docsAssets, docsErr = loadDocsAssets()

func loadDocsAssets() (map[string]*docsAsset, error) {
	sources := []struct {
		name, path  string
		from        fs.FS
		contentType string
		gzipped     bool
	}{
		{docsIndex, "swaggerui/index.html", docsPageFS, "text/html; charset=utf-8", false},
		{"init.js", "swaggerui/init.js", docsPageFS, "text/javascript; charset=utf-8", false},
		{"docs.css", "swaggerui/docs.css", docsPageFS, "text/css; charset=utf-8", false},
		{"swagger-ui-bundle.js", "swagger-ui-bundle.js.gz", swaggerui.FS, "text/javascript; charset=utf-8", true},
		{"swagger-ui.css", "swagger-ui.css.gz", swaggerui.FS, "text/css; charset=utf-8", true},
		{"favicon-16x16.png", "favicon-16x16.png", swaggerui.FS, "image/png", false},
		{"favicon-32x32.png", "favicon-32x32.png", swaggerui.FS, "image/png", false},
	}
	assets := make(map[string]*docsAsset, len(sources))
	for _, src := range sources {
		body, err := fs.ReadFile(src.from, src.path)
		if err != nil {
			return nil, fmt.Errorf("httpapi: docs asset %s: %w", src.name, err)
		}
		sum := sha256.Sum256(body)
		a := &docsAsset{
			contentType: src.contentType,
			body:        body,
			gzipped:     src.gzipped,
			// Weak: the gzip and plain representations share it.
			etag: `W/"` + hex.EncodeToString(sum[:12]) + `"`,
		}
		if src.gzipped {
			a.plain = sync.OnceValues(func() ([]byte, error) { return gunzip(body) })
		}
		assets[src.name] = a
	}
	return assets, nil
}

func gunzip(b []byte) ([]byte, error) {
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// docsPage serves GET /docs.
func (s *server) docsPage(c *gin.Context) {
	s.serveDocsAsset(c, docsIndex)
}

// docsAsset serves GET /docs/*asset; /docs/ is the page itself.
func (s *server) docsAsset(c *gin.Context) {
	name := strings.TrimPrefix(c.Param("asset"), "/")
	if name == "" {
		name = docsIndex
	}
	s.serveDocsAsset(c, name)
}

func (s *server) serveDocsAsset(c *gin.Context, name string) {
	if docsErr != nil {
		s.fail(c, docsErr)
		return
	}
	a, ok := docsAssets[name]
	if !ok {
		writeProblem(c, newProblem(http.StatusNotFound, CodeNotFound, "There is no resource at this path."))
		return
	}
	h := c.Writer.Header()
	// The files change only with the binary: clients keep them and revalidate with the ETag.
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	body := a.body
	if a.gzipped {
		h.Add("Vary", "Accept-Encoding")
	}
	if etagMatches(c.GetHeader("If-None-Match"), a.etag) {
		c.Status(http.StatusNotModified)
		return
	}
	if a.gzipped {
		if acceptsGzip(c.GetHeader("Accept-Encoding")) {
			h.Set("Content-Encoding", "gzip")
		} else {
			plain, err := a.plain()
			if err != nil {
				s.fail(c, fmt.Errorf("httpapi: decompress docs asset %s: %w", name, err))
				return
			}
			body = plain
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	c.Data(http.StatusOK, a.contentType, body)
}

// acceptsGzip reports whether an Accept-Encoding header admits gzip with a non-zero quality,
// by name or, when gzip is not named, through "*".
func acceptsGzip(header string) bool {
	gzipQ, starQ := -1.0, -1.0
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		for param := range strings.SplitSeq(params, ";") {
			if k, v, ok := strings.Cut(strings.TrimSpace(param), "="); ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		switch coding = strings.TrimSpace(coding); {
		case strings.EqualFold(coding, "gzip"):
			gzipQ = q
		case coding == "*":
			starQ = q
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return starQ > 0
}

// etagMatches implements the weak comparison of If-None-Match (RFC 9110, section 13.1.2).
func etagMatches(header, etag string) bool {
	etag = strings.TrimPrefix(etag, "W/")
	for candidate := range strings.SplitSeq(header, ",") {
		candidate = strings.TrimPrefix(strings.TrimSpace(candidate), "W/")
		if candidate == "*" || candidate == etag {
			return true
		}
	}
	return false
}
