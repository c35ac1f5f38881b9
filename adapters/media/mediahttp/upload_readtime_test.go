package mediahttp_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/adapters/media/mediahttp"
	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/media/image"
	"github.com/acme/postsvc/ports"
	mediaport "github.com/acme/postsvc/ports/media"
)

// slowCleaning's uploads take their time over each file, as cleaning a large image does:
// they read it in 16 KiB pieces and work 20 ms after each.
type slowCleaning struct{ mediaport.Service }

func (slowCleaning) BeginUpload(ctx context.Context, _ identity.Principal, d image.DetailsDraft) (mediaport.Upload, error) {
	// The real service's quota check is a database call, which fails once ctx has ended
	// (cancellation reaches it a moment after the request's: context.AfterFunc).
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(20 * time.Millisecond):
	}
	details, err := image.ParseDetails(d)
	if err != nil {
		return nil, err
	}
	return &slowUpload{fakeUpload: &fakeUpload{details: details}}, nil
}

type slowUpload struct{ *fakeUpload }

// Commit, like the real one's transaction, fails once ctx has ended.
func (u *slowUpload) Commit(ctx context.Context) ([]*image.Image, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return u.fakeUpload.Commit(ctx)
}

func (u *slowUpload) Add(ctx context.Context, filename string, r io.Reader) error {
	piece := make([]byte, 16<<10)
	for {
		if _, err := io.ReadFull(r, piece); err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// What was read stands for a file the fake takes whole.
	return u.fakeUpload.Add(ctx, filename, bytes.NewReader([]byte("\x89PNG\r\n\x1a\n")))
}

// readTimeout is the read timeout of slowCleaningServer, its router's and its http.Server's.
const readTimeout = 300 * time.Millisecond

// slowCleaningServer serves the media module on slowCleaning over real HTTP with readTimeout.
func slowCleaningServer(t *testing.T) *httptest.Server {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	r, err := httpapi.NewRouter(httpapi.RouterDeps{
		Modules: []httpapi.Module{mediahttp.New(slowCleaning{}, mediahttp.Settings{
			MaxFileBytes: 4 << 20, MaxFiles: 5, MaxRequestBytes: 8 << 20, UploadTimeout: 30 * time.Second,
		})},
		Authenticators: []ports.Authenticator{fakeAuth{}},
		HTTP:           config.HTTP{ReadTimeout: readTimeout, RequestTimeout: 30 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(r)
	srv.Config.ReadTimeout = readTimeout
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// TestUploadWorkDoesNotCountAgainstTheReadTimeout: an upload the server takes longer to clean
// than the read timeout, from a client that sent everything at once, is stored (201). The
// read timeout bounds the client's sending: before, the server's own work counted against
// it and the client got 408 "not received within the read timeout".
func TestUploadWorkDoesNotCountAgainstTheReadTimeout(t *testing.T) {
	srv := slowCleaningServer(t)

	// Two files of 1 MiB: 64 pieces each, about 1.3 s of cleaning each, in a body sent whole.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, name := range []string{"a.png", "b.png"} {
		w, _ := mw.CreateFormFile("file", name)
		_, _ = w.Write(append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 1<<20)...))
	}
	_ = mw.Close()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/api/v1/images", &body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer t")
	started := time.Now()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("after %v: status %d %s; want 201 (the client sent its body at once)", time.Since(started), res.StatusCode, answer)
	}
	if took := time.Since(started); took < 4*readTimeout {
		t.Fatalf("the upload took %v: too little work to outlast the %v read timeout, so the test shows nothing", took, readTimeout)
	}
}

// TestUploadFromAStalledClientStillTimesOut: the server's work moves the read deadline, the
// client's silence does not: a client that stops sending halfway gets 408 at the read timeout.
func TestUploadFromAStalledClientStillTimesOut(t *testing.T) {
	srv := slowCleaningServer(t)

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	w, _ := mw.CreateFormFile("file", "a.png")
	_, _ = w.Write(append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 1<<20)...))
	_ = mw.Close()
	half := body.Bytes()[:body.Len()/2]
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write(half) // then nothing more, until the test ends
		<-t.Context().Done()
		_ = pw.Close()
	}()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/api/v1/images", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(body.Len())
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer t")
	started := time.Now()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if res.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("after %v: status %d %s; want 408 for a client that stopped sending", time.Since(started), res.StatusCode, answer)
	}
}

// TestChunkedUploadStalledMidChunkTimesOut: a chunked body that stops inside a chunk is the
// client's slowness like any other: 408 request_timeout, not 503 (an outside probe got 503
// "canceled" when the stall came early in a file, as the quota check ran on the request's
// context that the read timeout had cancelled).
func TestChunkedUploadStalledMidChunkTimesOut(t *testing.T) {
	srv := slowCleaningServer(t)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	w, _ := mw.CreateFormFile("file", "a.png")
	_, _ = w.Write(append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 64<<10)...))
	_ = mw.Close()
	for name, sent := range map[string][]byte{
		"within a file": fmt.Appendf(nil, "%x\r\n%s", body.Len(), body.Bytes()[:body.Len()/2]),
		// The multipart reader holds the part's header and the first bytes of the file when
		// the read under it times out, and hands them out: the upload begins with the request
		// already cancelled.
		"within the first file's first bytes": fmt.Appendf(nil, "%x\r\n%s", body.Len(), body.Bytes()[:bytes.Index(body.Bytes(), []byte("PNG"))+100]),
	} {
		t.Run(name, func(t *testing.T) {
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			head := "POST /api/v1/images HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\nContent-Type: " +
				mw.FormDataContentType() + "\r\nTransfer-Encoding: chunked\r\n\r\n"
			if _, err := conn.Write(append([]byte(head), sent...)); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			answer, _ := io.ReadAll(res.Body)
			_ = res.Body.Close()
			if res.StatusCode != http.StatusRequestTimeout || !bytes.Contains(answer, []byte(`"request_timeout"`)) {
				t.Fatalf("status %d %s; want 408 request_timeout for a client that stopped inside a chunk", res.StatusCode, answer)
			}
		})
	}
}

// TestMultipartBodyWithoutItsBoundaryIsMalformed: a body that ends before the closing
// boundary its Content-Type declares (none at all, another boundary, empty) is 400
// malformed_request; it was taken for a well-formed body without files (422). A well-formed
// body with no file part is still 422.
func TestMultipartBodyWithoutItsBoundaryIsMalformed(t *testing.T) {
	srv := slowCleaningServer(t)
	var fieldOnly bytes.Buffer
	mw := multipart.NewWriter(&fieldOnly)
	_ = mw.WriteField("description", "no file")
	_ = mw.Close()
	for name, c := range map[string]struct {
		body   string
		status int
		code   string
	}{
		"another boundary":  {"--other\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\nPNG\r\n--other--\r\n", 400, "malformed_request"},
		"empty":             {"", 400, "malformed_request"},
		"no closing":        {"--" + mw.Boundary() + "\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\nx\r\n", 400, "malformed_request"},
		"a field, no files": {fieldOnly.String(), 422, "validation_failed"},
	} {
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/api/v1/images", strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", mw.FormDataContentType())
			req.Header.Set("Authorization", "Bearer t")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			answer, _ := io.ReadAll(res.Body)
			_ = res.Body.Close()
			if res.StatusCode != c.status || !bytes.Contains(answer, []byte(`"`+c.code+`"`)) {
				t.Fatalf("status %d %s; want %d %s", res.StatusCode, answer, c.status, c.code)
			}
		})
	}
}
