package mediahttp_test

import (
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
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

// slowAbortService's uploads fail as a store outage would, and their Abort (removing what was
// stored) takes until the test releases it, as with a stalled object store.
type slowAbortService struct {
	mediaport.Service
	aborting, release chan struct{}
}

func (s slowAbortService) BeginUpload(context.Context, identity.Principal, image.DetailsDraft) (mediaport.Upload, error) {
	return &slowAbort{fakeUpload: &fakeUpload{}, s: s}, nil
}

type slowAbort struct {
	*fakeUpload
	s slowAbortService
}

func (u *slowAbort) Add(_ context.Context, _ string, r io.Reader) error {
	_, _ = io.CopyN(io.Discard, r, 16)
	return fmt.Errorf("objects.put: %w", domain.ErrUnavailable)
}

func (u *slowAbort) Abort() {
	close(u.s.aborting)
	select {
	case <-u.s.release:
	case <-time.After(10 * time.Second):
	}
}

// TestFailedUploadIsAnsweredBeforeItsObjectsAreRemoved: over real HTTP, the 503 of an upload
// whose store failed reaches the client while its objects are still being removed.
func TestFailedUploadIsAnsweredBeforeItsObjectsAreRemoved(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	svc := slowAbortService{aborting: make(chan struct{}), release: make(chan struct{})}
	r, err := httpapi.NewRouter(httpapi.RouterDeps{
		Modules: []httpapi.Module{mediahttp.New(svc, mediahttp.Settings{
			MaxFileBytes: 1 << 20, MaxFiles: 5, MaxRequestBytes: 4 << 20, UploadTimeout: 5 * time.Second,
		})},
		Authenticators: []ports.Authenticator{fakeAuth{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	defer srv.Close()
	defer close(svc.release)

	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		w, _ := mw.CreateFormFile("file", "a.png")
		_, _ = w.Write(append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 64<<10)...))
		_ = pw.CloseWithError(mw.Close())
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/api/v1/images", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer t")
	res, err := http.DefaultClient.Do(req)
	_ = pr.Close() // the rest of the body is not wanted: the writer stops
	if err != nil {
		t.Fatalf("no answer while the upload's objects were being removed: %v", err)
	}
	body, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil {
		t.Fatalf("the answer's body did not end while the upload's objects were being removed: %v", err)
	}
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"status":503`) {
		t.Fatalf("status %d, body %s: want a complete 503 problem", res.StatusCode, body)
	}
	// The answer may arrive before the handler reaches Abort; Abort must still come.
	select {
	case <-svc.aborting:
	case <-time.After(5 * time.Second):
		t.Fatal("the failed upload was never aborted")
	}
}
