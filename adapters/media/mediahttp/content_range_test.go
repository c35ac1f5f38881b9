package mediahttp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/adapters/media/mediahttp"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/media/image"
	"github.com/acme/postsvc/ports"
	mediaport "github.com/acme/postsvc/ports/media"
)

// The content and thumbnail routes through the real router and kernel, on a service that
// serves one public image of 100 bytes (0, 1, ... 99) as content and as thumbnail.

const servedSize = 100

var served = func() []byte {
	b := make([]byte, servedSize)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}()

type servedObject struct{ *bytes.Reader }

func (servedObject) Close() error { return nil }
func (servedObject) Info() ports.ObjectInfo {
	return ports.ObjectInfo{Key: "k", Size: servedSize, Modified: time.Unix(1700000000, 0)}
}

type contentService struct{ mediaport.Service }

func servedImage() *image.Image {
	details, err := image.ParseDetails(image.DetailsDraft{Visibility: new("public")})
	if err != nil {
		panic(err)
	}
	img, err := image.New("0190a1b2-0000-7000-8000-000000000001", "u1", "photo.png",
		image.Content{Format: image.FormatPNG, Bytes: servedSize, Width: 1, Height: 1, SHA256: make([]byte, 32)},
		details, time.Unix(1700000000, 0))
	if err != nil {
		panic(err)
	}
	return img
}

func (contentService) Content(context.Context, identity.Principal, string) (*image.Image, ports.Object, error) {
	return servedImage(), servedObject{bytes.NewReader(served)}, nil
}

func (contentService) Thumbnail(context.Context, identity.Principal, string) (*image.Image, ports.Object, string, error) {
	return servedImage(), servedObject{bytes.NewReader(served)}, "image/png", nil
}

func contentRouter(t *testing.T) http.Handler {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	r, err := httpapi.NewRouter(httpapi.RouterDeps{
		Modules:        []httpapi.Module{mediahttp.New(contentService{}, mediahttp.Settings{MaxFileBytes: 1 << 20, MaxFiles: 5, MaxRequestBytes: 1 << 20})},
		Authenticators: []ports.Authenticator{fakeAuth{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestContentRange: a Range header the server must or may ignore (another unit, an invalid
// byte range set, a method other than GET) gets the whole content, 200; a valid range that
// selects nothing gets 416 as a problem document with Content-Range: bytes */100, also when a
// precondition lets the range apply; a valid range that selects bytes gets them, 206.
func TestContentRange(t *testing.T) {
	router := contentRouter(t)
	const etag = "<etag>" // the path's: the content's or the thumbnail's
	type want struct {
		status       int
		body         []byte
		contentRange string
	}
	whole := want{http.StatusOK, served, ""}
	refused := want{http.StatusRequestedRangeNotSatisfiable, nil, "bytes */100"}
	cases := []struct {
		method  string
		headers map[string]string
		want    want
	}{
		{"GET", nil, whole},
		{"GET", map[string]string{"Range": "items=0-1"}, whole},
		{"GET", map[string]string{"Range": "bytes=abc"}, whole},
		{"GET", map[string]string{"Range": "bytes=5-2"}, whole},
		{"GET", map[string]string{"Range": "bytes="}, whole},
		{"GET", map[string]string{"Range": "bytes=0-1,x"}, whole},
		{"GET", map[string]string{"Range": "items=0-1", "If-None-Match": `"other"`}, whole},
		{"GET", map[string]string{"Range": "bytes=5-2", "If-Range": etag}, whole},
		{"GET", map[string]string{"Range": "bytes=999999999-"}, refused},
		{"GET", map[string]string{"Range": "bytes=100-"}, refused},
		{"GET", map[string]string{"Range": "bytes=-0"}, refused},
		{"GET", map[string]string{"Range": "bytes=99999999999999999999-"}, refused},
		{"GET", map[string]string{"Range": "bytes=100-", "If-None-Match": `"other"`}, refused},
		{"GET", map[string]string{"Range": "bytes=100-", "If-Range": etag}, refused},
		{"GET", map[string]string{"Range": "bytes=100-", "If-Range": `"other"`}, whole},
		{"GET", map[string]string{"Range": "bytes=100-", "If-None-Match": etag}, want{http.StatusNotModified, nil, ""}},
		{"GET", map[string]string{"Range": "bytes=10-19"}, want{http.StatusPartialContent, served[10:20], "bytes 10-19/100"}},
		{"GET", map[string]string{"Range": "BYTES=10-19"}, want{http.StatusPartialContent, served[10:20], "bytes 10-19/100"}},
		{"GET", map[string]string{"Range": "bytes=-0,98-99999999999999999999"}, want{http.StatusPartialContent, served[98:], "bytes 98-99/100"}},
		{"GET", map[string]string{"Range": "bytes=-99999999999999999999"}, want{http.StatusPartialContent, served, "bytes 0-99/100"}},
		{"GET", map[string]string{"Range": "bytes=0-1", "If-Range": etag}, want{http.StatusPartialContent, served[:2], "bytes 0-1/100"}},
		{"HEAD", map[string]string{"Range": "bytes=999999999-"}, want{http.StatusOK, nil, ""}},
		{"HEAD", map[string]string{"Range": "bytes=0-1"}, want{http.StatusOK, nil, ""}},
	}
	sum := servedImage().SHA256Hex()
	for path, etagOfPath := range map[string]string{
		"/api/v1/images/0190a1b2-0000-7000-8000-000000000001/content":   `"` + sum + `"`,
		"/api/v1/images/0190a1b2-0000-7000-8000-000000000001/thumbnail": `"` + sum + `-thumb"`,
	} {
		for _, tc := range cases {
			req := httptest.NewRequest(tc.method, path, nil)
			for k, v := range tc.headers {
				if v == etag {
					v = etagOfPath
				}
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			router.ServeHTTP(rec, req)
			res := rec.Result()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.want.status || res.Header.Get("Content-Range") != tc.want.contentRange {
				t.Errorf("%s %s %v: %d, Content-Range %q, want %d, %q: %.200s", tc.method, path, tc.headers, res.StatusCode,
					res.Header.Get("Content-Range"), tc.want.status, tc.want.contentRange, body)
				continue
			}
			switch {
			case tc.want.status == http.StatusRequestedRangeNotSatisfiable:
				var p struct {
					Code   string `json:"code"`
					Status int    `json:"status"`
				}
				if res.Header.Get("Content-Type") != "application/problem+json" || json.Unmarshal(body, &p) != nil ||
					p.Code != "range_not_satisfiable" || p.Status != http.StatusRequestedRangeNotSatisfiable ||
					res.Header.Get("Content-Disposition") != "" {
					t.Errorf("%s %v: 416 %q %q (Content-Disposition %q), want a range_not_satisfiable problem document",
						path, tc.headers, res.Header.Get("Content-Type"), body, res.Header.Get("Content-Disposition"))
				}
			case tc.method == http.MethodHead:
				if res.Header.Get("Content-Length") != strconv.Itoa(servedSize) {
					t.Errorf("HEAD %s %v: Content-Length %q, want the whole content's", path, tc.headers, res.Header.Get("Content-Length"))
				}
			case !bytes.Equal(body, tc.want.body):
				t.Errorf("%s %v: body %v, want %v", path, tc.headers, body, tc.want.body)
			}
		}
	}
}

// TestContentPreconditionsAreProblemDocuments: an If-Match or If-Unmodified-Since the content
// does not meet is 412 precondition_failed as a problem document. http.ServeContent answered
// it with no body under the image's Content-Type.
func TestContentPreconditionsAreProblemDocuments(t *testing.T) {
	router := contentRouter(t)
	sum := servedImage().SHA256Hex()
	modified := time.Unix(1700000000, 0).UTC()
	for path, etag := range map[string]string{
		"/api/v1/images/0190a1b2-0000-7000-8000-000000000001/content":   `"` + sum + `"`,
		"/api/v1/images/0190a1b2-0000-7000-8000-000000000001/thumbnail": `"` + sum + `-thumb"`,
	} {
		for _, tc := range []struct {
			headers map[string]string
			status  int
		}{
			{map[string]string{"If-Match": `"other"`}, http.StatusPreconditionFailed},
			{map[string]string{"If-Match": `"other"`, "Range": "bytes=0-1"}, http.StatusPreconditionFailed},
			{map[string]string{"If-Unmodified-Since": modified.Add(-time.Hour).Format(http.TimeFormat)}, http.StatusPreconditionFailed},
			{map[string]string{"If-Match": etag}, http.StatusOK},
			{map[string]string{"If-Match": "*"}, http.StatusOK},
			{map[string]string{"If-Unmodified-Since": modified.Add(time.Hour).Format(http.TimeFormat)}, http.StatusOK},
		} {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			router.ServeHTTP(rec, req)
			res := rec.Result()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.status {
				t.Errorf("%s %v: %d, want %d", path, tc.headers, res.StatusCode, tc.status)
				continue
			}
			if tc.status != http.StatusPreconditionFailed {
				if !bytes.Equal(body, served) {
					t.Errorf("%s %v: body %v, want the content", path, tc.headers, body)
				}
				continue
			}
			var p struct {
				Code   string `json:"code"`
				Status int    `json:"status"`
			}
			if res.Header.Get("Content-Type") != "application/problem+json" || json.Unmarshal(body, &p) != nil ||
				p.Code != "precondition_failed" || p.Status != http.StatusPreconditionFailed ||
				res.Header.Get("Content-Disposition") != "" || res.Header.Get("X-Request-ID") == "" {
				t.Errorf("%s %v: 412 %q %q (Content-Disposition %q), want a precondition_failed problem document",
					path, tc.headers, res.Header.Get("Content-Type"), body, res.Header.Get("Content-Disposition"))
			}
		}
	}
}
