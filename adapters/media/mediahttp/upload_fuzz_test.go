package mediahttp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/adapters/media/mediahttp"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/media/image"
	"github.com/acme/postsvc/ports"
	mediaport "github.com/acme/postsvc/ports/media"
)

// The multipart upload reader is fuzzed through the real router and kernel, on a service
// that accepts any file starting with the PNG signature: whatever the body, the answer is one
// the contract documents for the route (never a 500, never a panic), a 201 lists one image per
// file part it accepted, and no file part is read past the file limit.

const fuzzMaxFile = 4096

type fakeAuth struct{}

func (fakeAuth) Accepts(string) bool { return true }
func (fakeAuth) Authenticate(context.Context, string) (identity.Principal, error) {
	return identity.Principal{UserID: "u1", Role: identity.RoleUser}, nil
}

type fakeService struct{ mediaport.Service }

func (fakeService) BeginUpload(_ context.Context, _ identity.Principal, d image.DetailsDraft) (mediaport.Upload, error) {
	details, err := image.ParseDetails(d)
	if err != nil {
		return nil, err
	}
	return &fakeUpload{details: details}, nil
}

type fakeUpload struct {
	details image.Details
	images  []*image.Image
}

var errNotPNG = domain.NewError(domain.KindUnsupported, "unsupported_media_type", "not a PNG")

func (u *fakeUpload) Add(_ context.Context, filename string, r io.Reader) error {
	head := make([]byte, 8)
	n, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return err
	}
	if n < 8 || !bytes.Equal(head, []byte("\x89PNG\r\n\x1a\n")) {
		return errNotPNG
	}
	rest, err := io.Copy(io.Discard, r)
	if err != nil {
		return err
	}
	if rest+8 > fuzzMaxFile {
		return fmt.Errorf("read %d bytes of a file, past the %d limit", rest+8, fuzzMaxFile)
	}
	img, err := image.New(image.ID(fmt.Sprintf("0190a1b2-0000-7000-8000-%012d", len(u.images))), "u1", filename,
		image.Content{Format: image.FormatPNG, Bytes: rest + 8, Width: 1, Height: 1, SHA256: make([]byte, 32)}, u.details, time.Now())
	if err != nil {
		return err
	}
	u.images = append(u.images, img)
	return nil
}

func (u *fakeUpload) Commit(context.Context) ([]*image.Image, error) {
	if len(u.images) == 0 {
		return nil, domain.Invalid("file", "at least one file part is required")
	}
	return u.images, nil
}

func (u *fakeUpload) Abort() {}

func (u *fakeUpload) Details(d image.DetailsDraft) error {
	change, err := image.ParseChange(d)
	if err != nil {
		return err
	}
	u.details = change.Apply(u.details)
	for _, img := range u.images {
		img.Update(change)
	}
	return nil
}

var _ ports.Authenticator = fakeAuth{}

func fuzzRouter(tb testing.TB) http.Handler {
	tb.Helper()
	gin.SetMode(gin.ReleaseMode)
	r, err := httpapi.NewRouter(httpapi.RouterDeps{
		Modules: []httpapi.Module{mediahttp.New(fakeService{}, mediahttp.Settings{
			MaxFileBytes: fuzzMaxFile, MaxFiles: 5, MaxRequestBytes: 64 << 10, UploadTimeout: 5 * time.Second,
		})},
		Authenticators: []ports.Authenticator{fakeAuth{}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func seedBody(fields [][2]string, files ...[]byte) []byte {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.SetBoundary("fuzzboundary")
	for _, f := range fields {
		_ = mw.WriteField(f[0], f[1])
	}
	for i, data := range files {
		w, _ := mw.CreateFormFile("file", fmt.Sprintf("f%d.png", i))
		_, _ = w.Write(data)
	}
	_ = mw.Close()
	return buf.Bytes()
}

func FuzzUploadMultipart(f *testing.F) {
	png := []byte("\x89PNG\r\n\x1a\nrest of a png")
	f.Add(seedBody(nil, png))
	f.Add(seedBody([][2]string{{"visibility", "public"}, {"tags", "a, b"}, {"description", "d"}}, png, png))
	f.Add(seedBody([][2]string{{"tags", "bad tag"}}, png))
	f.Add(seedBody(nil, []byte("GIF89a")))
	f.Add(seedBody(nil, append(append([]byte{}, png...), make([]byte, fuzzMaxFile)...)))
	f.Add(seedBody([][2]string{{"unknown", "x"}}))
	f.Add([]byte("--fuzzboundary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\n\x89PNG\r\n\x1a\n"))
	f.Add([]byte("--fuzzboundary--\r\n"))
	f.Add([]byte("not multipart at all"))
	router := fuzzRouter(f)
	documented := map[int]bool{201: true, 400: true, 403: true, 408: true, 413: true, 415: true, 422: true}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/images", bytes.NewReader(body))
		req.Header.Set("Content-Type", "multipart/form-data; boundary=fuzzboundary")
		req.Header.Set("Authorization", "Bearer t")
		rec := httptest.NewRecorder()
		router.ServeHTTP(rec, req)
		if !documented[rec.Code] {
			t.Fatalf("status %d for a %d-byte body: %s", rec.Code, len(body), rec.Body.String())
		}
		if rec.Code != http.StatusCreated {
			return
		}
		var out struct {
			Images []struct {
				Filename string `json:"filename"`
				Bytes    int64  `json:"bytes"`
			} `json:"images"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || len(out.Images) == 0 {
			t.Fatalf("201 with %q: %v", rec.Body.String(), err)
		}
		for _, img := range out.Images {
			if img.Bytes > fuzzMaxFile || img.Filename == "" {
				t.Fatalf("accepted image %+v", img)
			}
		}
	})
}
