package e2e

// Tests of defects reviews found in the image context: a Range header that the server must
// ignore was answered 416; a raw control character in a part's file name was answered 400; an
// upload during a database stall was answered 503 only after 10 s; the thumbnail of a JPEG
// whose scan data does not decode was a 500.

import (
	"bytes"
	"fmt"
	stdimage "image"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/acme/postsvc/test/testdb"
)

// TestImageRangeRequests: RFC 9110 section 14.2 on both routes that serve bytes. A Range in
// a unit the server does not understand must be ignored, and one that is not a valid byte
// range set is ignored too: 200 with the whole content (they were 416). Only a valid byte
// range that selects no byte is 416, as a problem document with Content-Range: bytes */N;
// a valid range that selects bytes is still 206; HEAD ignores Range.
func TestImageRangeRequests(t *testing.T) {
	t.Parallel()
	forEachBackendWith(t, nil, func(t *testing.T, s *server) {
		a := s.signup(uniqueEmail("img-range"))
		imgs, _ := s.uploadImages(a.Access, nil, []upload{{"range.png", noisyPNG(t, 64, 64)}}, http.StatusCreated)
		for _, path := range []string{imgs[0].ContentURL, imgs[0].ThumbnailURL} {
			whole := s.do("GET", path, a.Access, nil)
			expect(t, whole, http.StatusOK)
			n := len(whole.Body)
			for _, rng := range []string{"items=0-1", "bytes=abc", "bytes=5-2", "bytes=", "bytes=1-2,x", "pages=1-2"} {
				for _, extra := range []map[string]string{nil, {"If-None-Match": `"other"`}} {
					headers := map[string]string{"Range": rng}
					for k, v := range extra {
						headers[k] = v
					}
					r := s.doWith("GET", path, a.Access, nil, headers)
					if r.Status != http.StatusOK || !bytes.Equal(r.Body, whole.Body) || r.Header.Get("Content-Range") != "" {
						t.Errorf("GET %s with %v: %d, %d bytes, Content-Range %q; want 200 with all %d bytes: %s",
							path, headers, r.Status, len(r.Body), r.Header.Get("Content-Range"), n, truncate(r.Body))
					}
				}
			}
			for _, headers := range []map[string]string{
				{"Range": "bytes=999999999-"},
				{"Range": fmt.Sprintf("bytes=%d-", n)},
				{"Range": "bytes=-0"},
				{"Range": "bytes=999999999-", "If-None-Match": `"other"`},
			} {
				r := s.doWith("GET", path, a.Access, nil, headers)
				expectProblem(t, r, http.StatusRequestedRangeNotSatisfiable, "range_not_satisfiable")
				if got := r.Header.Get("Content-Range"); got != "bytes */"+strconv.Itoa(n) {
					t.Errorf("GET %s with %v: Content-Range %q, want bytes */%d", path, headers, got, n)
				}
			}
			for rng, want := range map[string][2]int{"bytes=10-19": {10, 19}, "Bytes=10-19": {10, 19}, "bytes=-5": {n - 5, n - 1}, "bytes=3-999999999": {3, n - 1}} {
				r := s.doWith("GET", path, a.Access, nil, map[string]string{"Range": rng})
				expect(t, r, http.StatusPartialContent)
				if !bytes.Equal(r.Body, whole.Body[want[0]:want[1]+1]) || r.Header.Get("Content-Range") != fmt.Sprintf("bytes %d-%d/%d", want[0], want[1], n) {
					t.Errorf("GET %s with Range %q: %d bytes, Content-Range %q", path, rng, len(r.Body), r.Header.Get("Content-Range"))
				}
			}
			head := s.doWith("HEAD", path, a.Access, nil, map[string]string{"Range": "bytes=999999999-"})
			if head.Status != http.StatusOK || head.Header.Get("Content-Length") != strconv.Itoa(n) {
				t.Errorf("HEAD %s with an unsatisfiable Range: %d, Content-Length %q; want 200, %d", path, head.Status, head.Header.Get("Content-Length"), n)
			}
		}
	})
}

// TestImageRawControlCharactersInFileName: a part header whose file name holds raw control
// characters (as Go's multipart.Writer sends them) is accepted with them removed, as the
// contract says and as the same name percent-encoded in filename*= already was; the file's
// bytes are stored as from a clean name (the same sha256 and content). A header line that is
// malformed otherwise is still 400.
func TestImageRawControlCharactersInFileName(t *testing.T) {
	t.Parallel()
	forEachBackendWith(t, nil, func(t *testing.T, s *server) {
		a := s.signup(uniqueEmail("img-ctl"))
		data := noisyPNG(t, 64, 64)
		clean, _ := s.uploadImages(a.Access, nil, []upload{{"ab.png", data}}, http.StatusCreated)
		imgs, _ := s.uploadImages(a.Access, [][2]string{{"description", "raw controls"}},
			[]upload{{"a\x01b.png", data}, {"\x00c\x1f\x7fd\x0b.png", data}}, http.StatusCreated)
		for i, want := range []string{"ab.png", "cd.png"} {
			if imgs[i].Filename != want {
				t.Errorf("file %d stored as %q, want %q", i, imgs[i].Filename, want)
			}
			if imgs[i].SHA256 != clean[0].SHA256 || imgs[i].Bytes != clean[0].Bytes {
				t.Errorf("file %d: sha256 %s, %d bytes; the same file with a clean name: %s, %d bytes",
					i, imgs[i].SHA256, imgs[i].Bytes, clean[0].SHA256, clean[0].Bytes)
			}
			r := s.do("GET", imgs[i].ContentURL, a.Access, nil)
			expect(t, r, http.StatusOK)
			if sha256Hex(r.Body) != clean[0].SHA256 {
				t.Errorf("file %d: the content served hashes to %s, want %s", i, sha256Hex(r.Body), clean[0].SHA256)
			}
		}
		if imgs[0].Description != "raw controls" {
			t.Errorf("description %q", imgs[0].Description)
		}
		noColon := []byte("--b\r\nContent-Disposition form-data; name=\"file\"; filename=\"x.png\"\r\n\r\n" + string(data) + "\r\n--b--\r\n")
		r := s.doWith("POST", "/api/v1/images", a.Access, noColon, map[string]string{"Content-Type": "multipart/form-data; boundary=b"})
		expectProblem(t, r, http.StatusBadRequest, "malformed_request")
		if got := s.listImages(a.Access, "/api/v1/images"); len(got) != 3 {
			t.Errorf("%d images, want 3", len(got))
		}
	})
}

// TestImageUploadDuringDatabaseStall stalls the database (the network carries nothing, as
// when packets are dropped) and checks that an image upload is answered like every other
// request: 503 unavailable with Retry-After within a few seconds, whether the stall meets
// the upload at its start (authentication, the quota check) or at its commit, once the files
// are stored. Neither upload leaves an image, the objects stored before the failed commit are
// swept, and uploads work again once the database is back.
func TestImageUploadDuringDatabaseStall(t *testing.T) {
	t.Parallel()
	// Other requests answer within the default request timeout (5 s); allow for scheduling
	// on a busy machine.
	const answerWithin = 7 * time.Second
	for _, variant := range []struct {
		name  string
		redis bool
	}{{"principals-from-database", false}, {"principals-from-memory", true}} {
		t.Run(variant.name, func(t *testing.T) {
			t.Parallel()
			dsn, proxy := testdb.MySQLBehindProxy(t)
			env := []string{"APP_DATABASE_DRIVER=mysql", "APP_DATABASE_DSN=" + dsn}
			if variant.redis {
				env = append(env, redisEnv(t)...)
			}
			s := startServer(t, env, withFastHashing("APP_MEDIA_SWEEP_GRACE=1s", "APP_MEDIA_SWEEP_INTERVAL=1s")...)
			a := s.signup(uniqueEmail("img-stall"))
			before, _ := s.uploadImages(a.Access, nil, []upload{{"before.png", pngFile(t, 16, 16)}}, http.StatusCreated)

			small, larger := pngFile(t, 16, 16), pngFile(t, 24, 24) // made here: the writers run in goroutines

			// The stall meets the upload at its start.
			proxy.Stall()
			r, took := timedUpload(t, s, a.Access, func(mw *multipart.Writer) {
				_ = mw.WriteField("description", "during the stall")
				fw, _ := mw.CreateFormFile("file", "stalled.png")
				_, _ = fw.Write(small)
			})
			expectProblem(t, r, http.StatusServiceUnavailable, "unavailable")
			if r.Header.Get("Retry-After") == "" || took > answerWithin {
				t.Fatalf("upload at the start of a stall: Retry-After %q after %s, want 503 within %s", r.Header.Get("Retry-After"), took, answerWithin)
			}
			t.Logf("upload at the start of a stall: 503 after %s", took)
			proxy.Restore()
			waitReady(t, s)

			// The stall meets the upload at its commit: the first file is sent (the upload has
			// begun and stored it), then the database stalls, then the body ends.
			r, took = timedUpload(t, s, a.Access, func(mw *multipart.Writer) {
				fw, _ := mw.CreateFormFile("file", "first.png")
				_, _ = fw.Write(small)
				// Let the server read the part, begin the upload and store the file.
				time.Sleep(1500 * time.Millisecond)
				proxy.Stall()
				fw, _ = mw.CreateFormFile("file", "second.png")
				_, _ = fw.Write(larger)
			})
			expectProblem(t, r, http.StatusServiceUnavailable, "unavailable")
			if r.Header.Get("Retry-After") == "" || took > answerWithin {
				t.Fatalf("upload committed during a stall: Retry-After %q after %s (from the end of its body), want 503 within %s", r.Header.Get("Retry-After"), took, answerWithin)
			}
			t.Logf("upload committed during a stall: 503 after %s", took)
			proxy.Restore()
			waitReady(t, s)

			// Nothing of either upload is an image; what the second stored is swept.
			var listed []imageDoc
			for range 20 {
				if r := s.do("GET", "/api/v1/images", a.Access, nil); r.Status == http.StatusOK {
					listed = s.listImages(a.Access, "/api/v1/images")
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if len(listed) != 1 || listed[0].ID != before[0].ID {
				t.Fatalf("after the stall the images are %v, want only %s", ids(listed), before[0].ID)
			}
			deadline := time.Now().Add(20 * time.Second)
			for {
				objects := s.storedObjects("")
				if len(objects) <= 2 { // the first image and its thumbnail
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("objects of the failed uploads were not swept: %v", objects)
				}
				time.Sleep(250 * time.Millisecond)
			}
			s.uploadImages(a.Access, nil, []upload{{"after.png", pngFile(t, 16, 16)}}, http.StatusCreated)
		})
	}
}

// TestImageSlowUploadKeepsItsBudgets: the request timeout bounds an upload's database steps
// (now that they are not under the upload's own long bound), but not the time its body takes
// to arrive: with a request timeout of 1 s, an upload whose fields, then files, arrive over
// several seconds begins (the quota check), stores each file and commits.
func TestImageSlowUploadKeepsItsBudgets(t *testing.T) {
	t.Parallel()
	forEachBackendWith(t, []string{"APP_HTTP_REQUEST_TIMEOUT=1s"}, func(t *testing.T, s *server) {
		a := s.signup(uniqueEmail("img-slow"))
		small, larger := pngFile(t, 16, 16), pngFile(t, 24, 24) // made here: the writer runs in a goroutine
		r, _ := timedUpload(t, s, a.Access, func(mw *multipart.Writer) {
			_ = mw.WriteField("description", "slow")
			time.Sleep(1500 * time.Millisecond)
			fw, _ := mw.CreateFormFile("file", "first.png")
			_, _ = fw.Write(small)
			time.Sleep(1500 * time.Millisecond)
			fw, _ = mw.CreateFormFile("file", "second.png")
			_, _ = fw.Write(larger)
			time.Sleep(500 * time.Millisecond)
		})
		expect(t, r, http.StatusCreated)
		if got := s.listImages(a.Access, "/api/v1/images"); len(got) != 2 {
			t.Fatalf("%d images, want 2", len(got))
		}
	})
}

// timedUpload posts an upload whose parts write adds to a multipart writer over a pipe (so
// that it can pause or act midway), and reports the answer and how long it took from the end
// of the body.
func timedUpload(t *testing.T, s *server, token string, write func(mw *multipart.Writer)) (response, time.Duration) {
	t.Helper()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	req, err := http.NewRequest("POST", s.base+"/api/v1/images", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	ended := make(chan time.Time, 1)
	go func() {
		write(mw)
		_ = mw.Close()
		ended <- time.Now()
		_ = pw.Close()
	}()
	client := &http.Client{Timeout: 60 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	answered := time.Now()
	var end time.Time
	select {
	case end = <-ended:
	case <-time.After(30 * time.Second):
		t.Fatal("the body was never finished")
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}, answered.Sub(end)
}

// TestImageThumbnailOfPixelsThatDoNotDecode: the upload checks a JPEG's structure but not
// its scan data (decoding every upload in full would cost several times the upload itself),
// so a JPEG whose scan is cut short before a proper end marker is stored. Its thumbnail was
// a 500 on every request (the decoder refused it each time). It is now a flat grey
// placeholder of the size the real thumbnail would have had, orientation applied, made once
// and kept, and counted in /metrics.
func TestImageThumbnailOfPixelsThatDoNotDecode(t *testing.T) {
	t.Parallel()
	forEachBackendWith(t, nil, func(t *testing.T, s *server) {
		a := s.signup(uniqueEmail("img-undecodable"))
		whole := jpegWithMetadata(t, 600, 360) // orientation 6: shown 360 wide, 600 high
		sos := bytes.Index(whole, []byte{0xff, 0xda})
		cut := append(bytes.Clone(whole[:sos+60]), 0xff, 0xd9)
		if _, _, err := stdimage.Decode(bytes.NewReader(cut)); err == nil {
			t.Fatal("the cut JPEG decodes: not a case of pixels that do not decode")
		}
		imgs, _ := s.uploadImages(a.Access, nil, []upload{{"cut.jpg", cut}}, http.StatusCreated)
		before := s.metric("postsvc_media_thumbnail_placeholders_total")
		for range 3 {
			r := s.do("GET", imgs[0].ThumbnailURL, a.Access, nil)
			expect(t, r, http.StatusOK)
			if ct := r.Header.Get("Content-Type"); ct != "image/jpeg" {
				t.Fatalf("thumbnail Content-Type %q, want image/jpeg", ct)
			}
			thumb, format, err := stdimage.Decode(bytes.NewReader(r.Body))
			if err != nil || format != "jpeg" {
				t.Fatalf("the thumbnail does not decode as JPEG: %q %v", format, err)
			}
			if b := thumb.Bounds(); b.Dx() != 154 || b.Dy() != 256 {
				t.Fatalf("thumbnail %dx%d, want 154x256", b.Dx(), b.Dy())
			}
		}
		if got := s.metric("postsvc_media_thumbnail_placeholders_total") - before; got > 1 {
			t.Errorf("%v placeholders made for three requests of one image: it is made once and kept", got)
		}
		if got := s.metric("postsvc_media_thumbnail_placeholders_total"); got < 1 {
			t.Errorf("postsvc_media_thumbnail_placeholders_total is %v after a placeholder was served", got)
		}
		content := s.do("GET", imgs[0].ContentURL, a.Access, nil)
		expect(t, content, http.StatusOK)
		if sha256Hex(content.Body) != imgs[0].SHA256 {
			t.Error("the image's content is not served as stored")
		}
	})
}
