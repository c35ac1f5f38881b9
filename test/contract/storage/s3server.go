package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/acme/postsvc/adapters/storage/s3store"
	"github.com/acme/postsvc/test/fakes"
)

// The S3-protocol server of the S3 suites is, in order of preference:
//   - the one TEST_S3_ENDPOINT names, with TEST_S3_ACCESS_KEY and TEST_S3_SECRET_KEY (what
//     .ci/run exports after starting versitygw);
//   - versitygw started by the test binary on a free loopback port with a posix backend in a
//     temporary folder, from VERSITYGW_BIN, the PATH, or the cache folder .ci/run and
//     `make test-storage` install it to;
//   - none: the S3 tests are skipped, except in CI (CI=true), where they fail.
//
// Each test gets a bucket of its own, created and removed by the test.
const (
	EnvS3Endpoint  = "TEST_S3_ENDPOINT"
	EnvS3AccessKey = "TEST_S3_ACCESS_KEY"
	EnvS3SecretKey = "TEST_S3_SECRET_KEY" //nolint:gosec // G101: a variable's name, not a credential
	EnvS3Region    = "TEST_S3_REGION"
	EnvVersityGW   = "VERSITYGW_BIN"
	// VersityGWVersion is the versitygw release the tests and CI use.
	VersityGWVersion = "v1.8.0"
)

// S3Server is where an S3-protocol server answers.
type S3Server struct {
	Endpoint, AccessKey, SecretKey, Region string
}

var shared struct {
	once        sync.Once
	server      S3Server
	unavailable string
	stop        func()
}

// Main runs the tests of a package that uses S3 and stops the server it started, if any.
func Main(m *testing.M) int {
	code := m.Run()
	Stop()
	return code
}

// Stop stops the S3 server the tests started, if any; for test binaries whose TestMain
// wraps m.Run otherwise (the end-to-end suite's).
func Stop() {
	if shared.stop != nil {
		shared.stop()
	}
}

// S3 returns the tests' S3 server, starting versitygw the first time if needed. Without one
// it skips the test, or fails it when CI=true.
func S3(t testing.TB) S3Server {
	t.Helper()
	shared.once.Do(startShared)
	if shared.unavailable != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("storage: the S3 suite cannot run in CI: %s", shared.unavailable)
		}
		t.Skipf("storage: no S3 server: %s (set %s, or run `make test-storage`, which installs versitygw)", shared.unavailable, EnvS3Endpoint)
	}
	return shared.server
}

func startShared() {
	if ep := os.Getenv(EnvS3Endpoint); ep != "" {
		shared.server = S3Server{Endpoint: ep, AccessKey: os.Getenv(EnvS3AccessKey), SecretKey: os.Getenv(EnvS3SecretKey), Region: os.Getenv(EnvS3Region)}
		if shared.server.AccessKey == "" || shared.server.SecretKey == "" {
			shared.unavailable = fmt.Sprintf("%s is set but %s or %s is not", EnvS3Endpoint, EnvS3AccessKey, EnvS3SecretKey)
		}
		return
	}
	bin := VersityGWBinary()
	if bin == "" {
		shared.unavailable = fmt.Sprintf("%s is not set and no versitygw binary was found (%s, PATH, %s)", EnvS3Endpoint, EnvVersityGW, cachedBinary())
		return
	}
	srv, stop, err := StartVersityGW(bin)
	if err != nil {
		shared.unavailable = err.Error()
		return
	}
	shared.server, shared.stop = srv, stop
}

// cachedBinary is where .ci/run and `make test-storage` install versitygw.
func cachedBinary() string {
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "postsvc-tools", "versitygw-"+VersityGWVersion, "versitygw")
}

// VersityGWBinary finds a versitygw binary, or returns "".
func VersityGWBinary() string {
	if bin := os.Getenv(EnvVersityGW); bin != "" {
		return bin
	}
	if bin, err := exec.LookPath("versitygw"); err == nil {
		return bin
	}
	if bin := cachedBinary(); bin != "" {
		if info, err := os.Stat(bin); err == nil && !info.IsDir() {
			return bin
		}
	}
	return ""
}

// StartVersityGW starts bin with a posix backend in a new temporary folder on a free
// loopback port with random credentials, waits until it answers, and returns it with the
// function that stops it and removes the folder.
func StartVersityGW(bin string) (S3Server, func(), error) {
	dir, err := os.MkdirTemp("", "postsvc-versitygw-")
	if err != nil {
		return S3Server{}, nil, err
	}
	var lastErr error
	for range 3 { // the free port may be taken between choosing and binding it
		srv, stop, err := startVersityGW(bin, dir)
		if err == nil {
			return srv, func() { stop(); _ = os.RemoveAll(dir) }, nil
		}
		lastErr = err
	}
	_ = os.RemoveAll(dir)
	return S3Server{}, nil, lastErr
}

func startVersityGW(bin, dir string) (S3Server, func(), error) {
	port, err := freePort()
	if err != nil {
		return S3Server{}, nil, err
	}
	srv := S3Server{
		Endpoint:  "http://" + net.JoinHostPort("127.0.0.1", port),
		AccessKey: "test" + randomHex(8),
		SecretKey: randomHex(20),
		Region:    "us-east-1",
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return S3Server{}, nil, err
	}
	cmd := exec.CommandContext(context.Background(), bin, "--port", "127.0.0.1:"+port, "--quiet", "posix", data) //nolint:gosec // G204: the tests' own binary
	// Credentials through the environment, not the command line that ps shows.
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+srv.AccessKey, "ROOT_SECRET_KEY="+srv.SecretKey)
	var out fakes.LogBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return S3Server{}, nil, fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			return S3Server{}, nil, fmt.Errorf("versitygw exited at start: %s", strings.TrimSpace(out.String()))
		default:
		}
		if answers(srv.Endpoint) {
			return srv, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return S3Server{}, nil, fmt.Errorf("versitygw did not answer on %s within 30s: %s", srv.Endpoint, strings.TrimSpace(out.String()))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// answers reports whether an HTTP server answers at endpoint (any status: an anonymous
// request is refused, which is an answer).
func answers(endpoint string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return true
}

func freePort() (string, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = l.Close() }()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Settings returns store settings for bucket on the server.
func (s S3Server) Settings(bucket string) s3store.Settings {
	return s3store.Settings{
		Bucket: bucket, Endpoint: s.Endpoint, Region: s.Region,
		AccessKeyID: s.AccessKey, SecretAccessKey: s.SecretKey, ForcePathStyle: true,
	}
}

// NewBucket creates a bucket of the test's own, emptied and removed when the test ends, and
// returns a store on it.
func (s S3Server) NewBucket(t testing.TB) *s3store.Store {
	t.Helper()
	bucket := "postsvc-test-" + randomHex(8)
	store, err := s3store.New(t.Context(), s.Settings(bucket))
	if err != nil {
		t.Fatal(err)
	}
	client := store.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket %s on %s: %v", bucket, s.Endpoint, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := removeBucket(ctx, client, bucket); err != nil {
			t.Errorf("remove bucket %s: %v", bucket, err)
		}
	})
	return store
}

func removeBucket(ctx context.Context, client *s3.Client, bucket string) error {
	uploads, err := client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		return err
	}
	for _, u := range uploads.Uploads {
		if _, err := client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: u.Key, UploadId: u.UploadId}); err != nil {
			return err
		}
	}
	pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, o := range page.Contents {
			if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: o.Key}); err != nil {
				return err
			}
		}
	}
	_, err = client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)})
	var missing *types.NoSuchBucket
	if errors.As(err, &missing) {
		return nil
	}
	return err
}

// PendingUploads counts the bucket's unfinished multipart uploads.
func PendingUploads(t testing.TB, store *s3store.Store) int {
	t.Helper()
	out, err := store.Client().ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String(store.Bucket())})
	if err != nil {
		t.Fatalf("list multipart uploads: %v", err)
	}
	return len(out.Uploads)
}
