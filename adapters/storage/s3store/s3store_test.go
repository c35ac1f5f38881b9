package s3store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/acme/postsvc/adapters/storage/s3store"
	"github.com/acme/postsvc/ports"
)

const (
	bucket = "media"
	secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
)

// request is what the recording transport saw of one request.
type request struct {
	method, path string
	query        map[string][]string
	header       http.Header
	length       int64
}

func (r request) has(q string) bool { _, ok := r.query[q]; return ok }

// kind names the S3 operation of a request.
func (r request) kind() string {
	switch {
	case r.method == http.MethodPost && r.has("uploads"):
		return "CreateMultipartUpload"
	case r.method == http.MethodPut && r.has("partNumber"):
		return "UploadPart"
	case r.method == http.MethodPost && r.has("uploadId"):
		return "CompleteMultipartUpload"
	case r.method == http.MethodDelete && r.has("uploadId"):
		return "AbortMultipartUpload"
	case r.method == http.MethodPut:
		return "PutObject"
	case r.method == http.MethodGet:
		return "GetObject"
	case r.method == http.MethodHead:
		return "HeadObject"
	}
	return r.method
}

// recorder is an http.RoundTripper that records every request it passes on.
type recorder struct {
	mu   sync.Mutex
	reqs []request
	next http.RoundTripper
}

func (rec *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, request{
		method: req.Method, path: req.URL.Path, query: req.URL.Query(), header: req.Header.Clone(), length: req.ContentLength,
	})
	rec.mu.Unlock()
	return rec.next.RoundTrip(req)
}

func (rec *recorder) take() []request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := rec.reqs
	rec.reqs = nil
	return out
}

func kinds(reqs []request) []string {
	out := make([]string, len(reqs))
	for i, r := range reqs {
		out[i] = r.kind()
	}
	return out
}

// fake starts gofakes3 (in memory, the bucket created) and returns settings for it whose
// requests rec records.
func fake(t *testing.T, sse string) (s3store.Settings, *recorder) {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	return settingsFor(srv.URL, sse)
}

func settingsFor(endpoint, sse string) (s3store.Settings, *recorder) {
	rec := &recorder{next: http.DefaultTransport.(*http.Transport).Clone()}
	return s3store.Settings{
		Bucket: bucket, Endpoint: endpoint, Region: "us-east-1", AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: secret,
		ForcePathStyle: true, SSE: sse, PartSize: s3store.MinPartSize, HTTPClient: &http.Client{Transport: rec},
	}, rec
}

func newStore(t *testing.T, s s3store.Settings) *s3store.Store {
	t.Helper()
	store, err := s3store.New(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	return store
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// TestServerSideEncryptionHeader: PutObject and CreateMultipartUpload carry
// x-amz-server-side-encryption: AES256 by default, the configured value otherwise, and none
// when it is turned off.
func TestServerSideEncryptionHeader(t *testing.T) {
	for _, c := range []struct{ sse, want string }{
		{"", "AES256"}, {"AES256", "AES256"}, {"aws:kms", "aws:kms"}, {"none", ""}, {"NONE", ""},
	} {
		t.Run("sse="+c.sse, func(t *testing.T) {
			settings, rec := fake(t, c.sse)
			store := newStore(t, settings)
			small, large := randomBytes(1000), randomBytes(s3store.MinPartSize+1000)
			if _, err := store.Put(t.Context(), "small", bytes.NewReader(small), int64(len(small)), "image/png"); err != nil {
				t.Fatal(err)
			}
			if _, err := store.Put(t.Context(), "large", struct{ io.Reader }{bytes.NewReader(large)}, -1, "image/png"); err != nil {
				t.Fatal(err)
			}
			reqs := rec.take()
			seen := map[string]int{}
			for _, r := range reqs {
				got := r.header.Get("X-Amz-Server-Side-Encryption")
				switch r.kind() {
				case "PutObject", "CreateMultipartUpload":
					seen[r.kind()]++
					if got != c.want {
						t.Errorf("%s sent x-amz-server-side-encryption %q, want %q", r.kind(), got, c.want)
					}
					if c.want == "" {
						if _, present := r.header["X-Amz-Server-Side-Encryption"]; present {
							t.Errorf("%s sent the header empty; with encryption off it must be absent", r.kind())
						}
					}
				}
			}
			if seen["PutObject"] != 1 || seen["CreateMultipartUpload"] != 1 {
				t.Fatalf("requests %v: want one PutObject and one multipart upload", kinds(reqs))
			}
			for key, data := range map[string][]byte{"small": small, "large": large} {
				info, err := store.Stat(t.Context(), key)
				if err != nil || info.Size != int64(len(data)) {
					t.Fatalf("stat %s: %+v, %v", key, info, err)
				}
			}
		})
	}
}

func TestInvalidSettingsAreRefused(t *testing.T) {
	base, _ := settingsFor("http://127.0.0.1:1", "")
	for name, mutate := range map[string]func(*s3store.Settings){
		"sse":       func(s *s3store.Settings) { s.SSE = "DES" },
		"bucket":    func(s *s3store.Settings) { s.Bucket = "" },
		"part size": func(s *s3store.Settings) { s.PartSize = 1 << 20 },
		"half keys": func(s *s3store.Settings) { s.AccessKeyID = "" },
	} {
		s := base
		mutate(&s)
		_, err := s3store.New(t.Context(), s)
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error shows the secret: %v", name, err)
		}
	}
}

func TestSettingsNeverShowTheSecret(t *testing.T) {
	s, _ := settingsFor("http://127.0.0.1:1", "")
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(format, s); strings.Contains(out, secret) {
			t.Errorf("%s prints the secret: %s", format, out)
		}
	}
	if out := fmt.Sprintf("%v", &s); strings.Contains(out, secret) {
		t.Errorf("a pointer prints the secret: %s", out)
	}
}

// TestSmallBodiesTakeOnePutObject: a body of at most one part, known size or not, is one
// PutObject with its length, not a multipart upload.
func TestSmallBodiesTakeOnePutObject(t *testing.T) {
	settings, rec := fake(t, "")
	store := newStore(t, settings)
	data := randomBytes(s3store.MinPartSize)
	for _, size := range []int64{int64(len(data)), -1} {
		if _, err := store.Put(t.Context(), "k", bytes.NewReader(data), size, ""); err != nil {
			t.Fatal(err)
		}
		reqs := rec.take()
		if len(reqs) != 1 || reqs[0].kind() != "PutObject" || reqs[0].length != int64(len(data)) {
			t.Fatalf("size %d: requests %v, want one PutObject of %d bytes", size, kinds(reqs), len(data))
		}
	}
}

// TestMultipartAbortedOnFailure: a reader error or a cancellation after the first part
// aborts the upload (even though the context is done) and never completes it.
func TestMultipartAbortedOnFailure(t *testing.T) {
	for _, cancelIt := range []bool{false, true} {
		t.Run(fmt.Sprintf("cancel=%t", cancelIt), func(t *testing.T) {
			settings, rec := fake(t, "")
			store := newStore(t, settings)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var tail io.Reader = failingReader{errors.New("client went away")}
			if cancelIt {
				tail = cancelReader{cancel}
			}
			r := io.MultiReader(bytes.NewReader(randomBytes(s3store.MinPartSize+100)), tail)
			if _, err := store.Put(ctx, "k", r, -1, ""); err == nil {
				t.Fatal("the put succeeded")
			}
			got := kinds(rec.take())
			want := []string{"CreateMultipartUpload", "UploadPart", "AbortMultipartUpload"}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("requests %v, want %v", got, want)
			}
			if _, err := store.Stat(t.Context(), "k"); !errors.Is(err, ports.ErrObjectNotFound) {
				t.Fatalf("stat after the failed put: %v", err)
			}
		})
	}
}

type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

type cancelReader struct{ cancel func() }

func (c cancelReader) Read([]byte) (int, error) {
	c.cancel()
	return 0, context.Canceled
}

// TestOpenReadsLazily: Open is a HEAD; seeking to the end (how http.ServeContent learns the
// size) downloads nothing; a Read is one ranged GET from the offset, which following Reads
// continue; a Seek elsewhere starts another ranged GET.
func TestOpenReadsLazily(t *testing.T) {
	settings, rec := fake(t, "")
	store := newStore(t, settings)
	data := randomBytes(1 << 20)
	if _, err := store.Put(t.Context(), "k", bytes.NewReader(data), int64(len(data)), ""); err != nil {
		t.Fatal(err)
	}
	rec.take()
	o, err := store.Open(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = o.Close() }()
	if end, err := o.Seek(0, io.SeekEnd); err != nil || end != int64(len(data)) {
		t.Fatalf("seek end: %d, %v", end, err)
	}
	if got := kinds(rec.take()); strings.Join(got, ",") != "HeadObject" {
		t.Fatalf("open and seek to the end sent %v, want one HeadObject", got)
	}
	read := func(at int64, n int) {
		t.Helper()
		b := make([]byte, n)
		if _, err := io.ReadFull(o, b); err != nil || !bytes.Equal(b, data[at:at+int64(n)]) {
			t.Fatalf("%d bytes at %d: %v", n, at, err)
		}
	}
	if _, err := o.Seek(1000, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	read(1000, 10)
	read(1010, 100)
	reqs := rec.take()
	if len(reqs) != 1 || reqs[0].kind() != "GetObject" || reqs[0].header.Get("Range") != "bytes=1000-" {
		t.Fatalf("two reads from 1000 sent %v (range %q), want one GET of bytes=1000-", kinds(reqs), rangeOf(reqs))
	}
	if reqs[0].header.Get("If-Match") == "" {
		t.Error("the GET does not ask for the object that was opened (If-Match)")
	}
	if _, err := o.Seek(500_000, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	read(500_000, 10)
	if reqs := rec.take(); len(reqs) != 1 || reqs[0].header.Get("Range") != "bytes=500000-" {
		t.Fatalf("a read after a seek sent %v (range %q), want one GET of bytes=500000-", kinds(reqs), rangeOf(reqs))
	}
	if _, err := o.Seek(0, io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	if n, err := o.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("read at the end: %d, %v", n, err)
	}
	if reqs := rec.take(); len(reqs) != 0 {
		t.Fatalf("a read at the end sent %v", kinds(reqs))
	}
}

func rangeOf(reqs []request) string {
	if len(reqs) == 0 {
		return ""
	}
	return reqs[0].header.Get("Range")
}

func TestMissingObjects(t *testing.T) {
	settings, _ := fake(t, "")
	store := newStore(t, settings)
	if _, err := store.Open(t.Context(), "nope"); !errors.Is(err, ports.ErrObjectNotFound) {
		t.Errorf("open: %v", err)
	}
	if _, err := store.Stat(t.Context(), "nope"); !errors.Is(err, ports.ErrObjectNotFound) {
		t.Errorf("stat: %v", err)
	}
	if err := store.Delete(t.Context(), "nope"); err != nil {
		t.Errorf("delete: %v", err)
	}
}

func TestCheck(t *testing.T) {
	settings, _ := fake(t, "")
	if err := newStore(t, settings).Check(t.Context()); err != nil {
		t.Fatalf("check of an existing bucket: %v", err)
	}
	settings.Bucket = "missing"
	if err := newStore(t, settings).Check(t.Context()); err == nil {
		t.Fatal("check of a missing bucket passed")
	}

	// A server that never answers: Check gives up after its timeout, without retrying.
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-hang }))
	t.Cleanup(func() { close(hang); srv.Close() })
	settings, _ = settingsFor(srv.URL, "")
	settings.CheckTimeout = 300 * time.Millisecond
	start := time.Now()
	err := newStore(t, settings).Check(t.Context())
	if err == nil {
		t.Fatal("check of a server that never answers passed")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("check took %v with a 300ms timeout", took)
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatalf("the error shows the secret: %v", err)
	}

	// Nothing listening.
	settings, _ = settingsFor("http://127.0.0.1:1", "")
	if err := newStore(t, settings).Check(t.Context()); err == nil {
		t.Fatal("check with no server passed")
	}
}

// discardS3 answers the multipart upload requests and PutObject and throws the bodies away,
// so that what a test measures is the client's memory alone.
func discardS3(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodPost && q.Has("uploads"):
		_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult><Bucket>media</Bucket><Key>k</Key><UploadId>u1</UploadId></InitiateMultipartUploadResult>`)
	case r.Method == http.MethodPost && q.Has("uploadId"):
		_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult><Bucket>media</Bucket><Key>k</Key><ETag>"e"</ETag></CompleteMultipartUploadResult>`)
	case r.Method == http.MethodPut:
		w.Header().Set("ETag", `"e"`)
	case r.Method == http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
	default:
		w.WriteHeader(http.StatusNotImplemented)
	}
}

// endless yields n pseudo-random bytes without holding them.
type endless struct{ left int64 }

func (e *endless) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	for i := range p {
		p[i] = byte(e.left) ^ byte(i)
	}
	e.left -= int64(len(p))
	return len(p), nil
}

// TestUploadMemoryIsBounded: a 64 MiB body of unknown size is uploaded through one part
// buffer (8 MiB), not held whole: the allocations of the whole upload stay a small multiple
// of a part, far below the body.
func TestUploadMemoryIsBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(discardS3))
	t.Cleanup(srv.Close)
	settings, rec := settingsFor(srv.URL, "")
	settings.PartSize = s3store.DefaultPartSize
	store := newStore(t, settings)
	const size = 64 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	n, err := store.Put(t.Context(), "k", &endless{left: size}, -1, "")
	runtime.ReadMemStats(&after)
	if err != nil || n != size {
		t.Fatalf("put: %d, %v", n, err)
	}
	parts := 0
	for _, r := range rec.take() {
		if r.kind() == "UploadPart" {
			parts++
			if r.length > s3store.DefaultPartSize {
				t.Fatalf("a part of %d bytes", r.length)
			}
		}
	}
	if parts != size/s3store.DefaultPartSize {
		t.Fatalf("%d parts, want %d", parts, size/s3store.DefaultPartSize)
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("uploading %d MiB allocated %.1f MiB", size>>20, float64(allocated)/(1<<20))
	if allocated > 3*s3store.DefaultPartSize {
		t.Fatalf("uploading %d MiB allocated %d MiB: the body is not streamed part by part", size>>20, allocated>>20)
	}
}

// TestListFollowsPages: List goes through every ListObjectsV2 page.
func TestListFollowsPages(t *testing.T) {
	settings, rec := fake(t, "")
	settings.ListPageSize = 2
	store := newStore(t, settings)
	want := map[string]bool{}
	for i := range 7 {
		key := fmt.Sprintf("p/%d", i)
		want[key] = true
		if _, err := store.Put(t.Context(), key, strings.NewReader("x"), 1, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.Put(t.Context(), "other", strings.NewReader("x"), 1, ""); err != nil {
		t.Fatal(err)
	}
	rec.take()
	got := map[string]bool{}
	if err := store.List(t.Context(), "p/", func(info ports.ObjectInfo) error {
		got[info.Key] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("listed %v, want %v", got, want)
	}
	pages := 0
	for _, r := range rec.take() {
		if r.method == http.MethodGet && r.query["list-type"] != nil {
			pages++
		}
	}
	if pages != 4 {
		t.Fatalf("%d list requests for 7 keys 2 a page, want 4", pages)
	}
}

// TestBoundedReadsAskForTheirRange: an object told where its reader stops (a Range request's
// last byte) asks S3 for that range, not everything from its offset; a read past the bound
// still works, with a request of its own.
func TestBoundedReadsAskForTheirRange(t *testing.T) {
	settings, rec := fake(t, "")
	store := newStore(t, settings)
	data := randomBytes(1 << 20)
	if _, err := store.Put(t.Context(), "k", bytes.NewReader(data), int64(len(data)), ""); err != nil {
		t.Fatal(err)
	}
	o, err := store.Open(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = o.Close() }()
	o.(ports.ReadBounder).BoundReads(1010)
	rec.take()
	if _, err := o.Seek(1000, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(io.LimitReader(o, 10))
	if err != nil || !bytes.Equal(got, data[1000:1010]) {
		t.Fatalf("the 10 bounded bytes: %v", err)
	}
	if reqs := rec.take(); len(reqs) != 1 || rangeOf(reqs) != "bytes=1000-1009" {
		t.Fatalf("a bounded read sent %v (range %q), want one GET of bytes=1000-1009", kinds(reqs), rangeOf(reqs))
	}
	got = make([]byte, 20)
	if _, err := io.ReadFull(o, got); err != nil || !bytes.Equal(got, data[1010:1030]) {
		t.Fatalf("a read past the bound: %v", err)
	}
	if reqs := rec.take(); len(reqs) != 1 || rangeOf(reqs) != "bytes=1010-" {
		t.Fatalf("a read past the bound sent %v (range %q), want one GET of bytes=1010-", kinds(reqs), rangeOf(reqs))
	}
	rest, err := io.ReadAll(o)
	if err != nil || !bytes.Equal(rest, data[1030:]) {
		t.Fatalf("the rest: %d bytes, %v", len(rest), err)
	}
}
