// Package s3store is the S3 ports.ObjectStore (AWS S3 or any S3-protocol server: MinIO,
// versitygw, Ceph RGW), built on aws-sdk-go-v2.
//
//   - Put sends a body of at most one part (PartSize, 8 MiB) with one PutObject, and a
//     larger or unknown-size body as a multipart upload whose parts are read one at a time
//     into a single pooled buffer, so an upload holds one part in memory whatever its size.
//     A multipart upload is aborted on any failure, reader error or cancellation, so a
//     failed Put never leaves an object (S3 makes an object visible only when PutObject or
//     CompleteMultipartUpload succeeds).
//   - Every PutObject and CreateMultipartUpload carries the configured server-side
//     encryption (x-amz-server-side-encryption, AES256 by default).
//   - Open asks HeadObject for the size and returns an object that issues a ranged GET from
//     its current offset on the first Read after a Seek, so Seek to the end (how
//     http.ServeContent learns the size) downloads nothing, and a Range request downloads
//     from its start only.
//   - The object's reads are cancelled with Open's context but not by its deadline, and a
//     request that makes no progress for the stall timeout fails without a retry (stall.go),
//     so a server that stops answering never holds a caller longer than that.
//   - Missing objects (NoSuchKey, 404) are ports.ErrObjectNotFound; Check is a HeadBucket.
//
// Credentials never appear in errors or logs: Settings prints its secret redacted.
package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/acme/postsvc/adapters/storage"
	"github.com/acme/postsvc/ports"
)

// Server-side encryption values.
const (
	SSEAES256 = "AES256"
	SSEKMS    = "aws:kms"
	SSENone   = "none"
	// DefaultSSE is what an empty Settings.SSE means: objects are encrypted unless
	// encryption is turned off explicitly with SSENone.
	DefaultSSE = SSEAES256
)

const (
	// DefaultPartSize is the part size of multipart uploads and the largest body sent with
	// one PutObject.
	DefaultPartSize = 8 << 20
	// MinPartSize is S3's smallest part (but the last).
	MinPartSize = 5 << 20
	// maxParts is S3's most parts in one upload: with 8 MiB parts, 80 GiB.
	maxParts = 10000
	// DefaultCheckTimeout bounds the readiness check's HeadBucket.
	DefaultCheckTimeout = 2 * time.Second
	// abortTimeout bounds aborting a failed multipart upload, which runs even when the
	// Put's context is cancelled.
	abortTimeout = 30 * time.Second
	// DefaultRegion is used when Settings.Region is empty (S3-protocol servers accept any).
	DefaultRegion = "us-east-1"
)

// Settings configure the store. Bucket is required; Endpoint is empty for AWS itself.
type Settings struct {
	Bucket   string
	Endpoint string // e.g. http://127.0.0.1:7070 for a local server
	Region   string // DefaultRegion when empty
	// AccessKeyID and SecretAccessKey are static credentials; when both are empty the SDK's
	// default chain is used (environment, shared files, IAM roles for pods or instances).
	AccessKeyID     string
	SecretAccessKey string
	// ForcePathStyle addresses the bucket in the path (endpoint/bucket/key) instead of the
	// host name, which most S3-protocol servers need.
	ForcePathStyle bool
	// SSE is the server-side encryption sent with every object: "AES256" (DefaultSSE, also
	// what "" means), "aws:kms", or "none" to send no encryption header.
	SSE string
	// PartSize is the multipart part size (DefaultPartSize when 0, at least MinPartSize).
	PartSize int64
	// CheckTimeout bounds Check (DefaultCheckTimeout when 0).
	CheckTimeout time.Duration
	// StallTimeout bounds how long one request may make no progress: its body not taken
	// and no answer, or one read of the answer's body waiting on the server
	// (DefaultStallTimeout when 0; no bound when negative). A stalled request fails without
	// being tried again (see stallClient).
	StallTimeout time.Duration
	// MaxAttempts is how often a request is tried (the SDK's default, 3, when 0).
	MaxAttempts int
	// ListPageSize is how many keys List asks for per ListObjectsV2 page (the server's
	// default, 1000 on S3, when 0).
	ListPageSize int32
	// HTTPClient replaces the store's HTTP client (tests record requests with it).
	HTTPClient *http.Client
}

// String describes the settings without the secret key, so they can be logged.
func (s Settings) String() string {
	secret := ""
	if s.SecretAccessKey != "" {
		secret = "[redacted]"
	}
	return fmt.Sprintf("s3store.Settings{Bucket:%q Endpoint:%q Region:%q AccessKeyID:%q SecretAccessKey:%s ForcePathStyle:%t SSE:%q PartSize:%d}",
		s.Bucket, s.Endpoint, s.Region, s.AccessKeyID, secret, s.ForcePathStyle, s.SSE, s.PartSize)
}

// GoString keeps %#v from printing the secret too.
func (s Settings) GoString() string { return s.String() }

// NormalizeSSE returns the encryption value sent for sse ("" for none), or an error for a
// value that is not one of AES256, aws:kms and none.
func NormalizeSSE(sse string) (string, error) {
	switch strings.TrimSpace(sse) {
	case "":
		return DefaultSSE, nil
	case SSEAES256:
		return SSEAES256, nil
	case SSEKMS:
		return SSEKMS, nil
	}
	if strings.EqualFold(strings.TrimSpace(sse), SSENone) {
		return "", nil
	}
	return "", fmt.Errorf("server-side encryption must be %s, %s or %s, got %q", SSEAES256, SSEKMS, SSENone, sse)
}

// Store is a ports.ObjectStore on one S3 bucket. It is safe for concurrent use.
type Store struct {
	client       *s3.Client
	bucket       string
	sse          types.ServerSideEncryption
	partSize     int64
	checkTimeout time.Duration
	listPageSize int32
	parts        sync.Pool // *[]byte of partSize
}

var (
	_ ports.ObjectStore         = (*Store)(nil)
	_ ports.PartialWriteSweeper = (*Store)(nil) // the media sweep removes killed writes through it
)

// New builds the store. It makes no request: Check tells whether the bucket answers.
func New(ctx context.Context, s Settings) (*Store, error) {
	if s.Bucket == "" {
		return nil, errors.New("s3store: no bucket given")
	}
	sse, err := NormalizeSSE(s.SSE)
	if err != nil {
		return nil, fmt.Errorf("s3store: %w", err)
	}
	if (s.AccessKeyID == "") != (s.SecretAccessKey == "") {
		return nil, errors.New("s3store: the access key id and the secret access key must be given together")
	}
	partSize := s.PartSize
	switch {
	case partSize == 0:
		partSize = DefaultPartSize
	case partSize < MinPartSize:
		return nil, fmt.Errorf("s3store: part size %d is below S3's minimum of %d", partSize, MinPartSize)
	}
	region := s.Region
	if region == "" {
		region = DefaultRegion
	}
	var httpClient aws.HTTPClient = newHTTPClient()
	if s.HTTPClient != nil {
		httpClient = s.HTTPClient
	}
	switch {
	case s.StallTimeout == 0:
		httpClient = stallClient{next: httpClient, timeout: DefaultStallTimeout}
	case s.StallTimeout > 0:
		httpClient = stallClient{next: httpClient, timeout: s.StallTimeout}
	}
	cfg, err := awsConfig(ctx, s, region, httpClient)
	if err != nil {
		return nil, fmt.Errorf("s3store: %w", err)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if s.Endpoint != "" {
			o.BaseEndpoint = aws.String(s.Endpoint)
		}
		o.UsePathStyle = s.ForcePathStyle
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	checkTimeout := s.CheckTimeout
	if checkTimeout <= 0 {
		checkTimeout = DefaultCheckTimeout
	}
	st := &Store{client: client, bucket: s.Bucket, sse: types.ServerSideEncryption(sse), partSize: partSize, checkTimeout: checkTimeout, listPageSize: s.ListPageSize}
	st.parts.New = func() any {
		b := make([]byte, partSize)
		return &b
	}
	return st, nil
}

// awsConfig is the SDK configuration: with static credentials, exactly the settings (nothing
// read from the environment or shared files); without, the SDK's default chain finds them.
func awsConfig(ctx context.Context, s Settings, region string, httpClient aws.HTTPClient) (aws.Config, error) {
	// Trailing checksums (aws-chunked bodies) are what newer SDKs send by default, and not
	// every S3-protocol server takes them; bodies are signed (SigV4) either way.
	const checksums = aws.RequestChecksumCalculationWhenRequired
	const validation = aws.ResponseChecksumValidationWhenRequired
	if s.AccessKeyID != "" {
		return aws.Config{
			Region:                     region,
			Credentials:                aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(s.AccessKeyID, s.SecretAccessKey, "")),
			HTTPClient:                 httpClient,
			RetryMaxAttempts:           s.MaxAttempts,
			RequestChecksumCalculation: checksums,
			ResponseChecksumValidation: validation,
		}, nil
	}
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(region),
		awsconfig.WithHTTPClient(httpClient),
		awsconfig.WithRequestChecksumCalculation(checksums),
		awsconfig.WithResponseChecksumValidation(validation),
	}
	if s.MaxAttempts > 0 {
		opts = append(opts, awsconfig.WithRetryMaxAttempts(s.MaxAttempts))
	}
	return awsconfig.LoadDefaultConfig(ctx, opts...)
}

// newHTTPClient bounds connecting and waiting for an answer's headers, but not the transfer
// of a body, which takes as long as its size needs (the callers' contexts bound that).
func newHTTPClient() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = 5 * time.Second }).
		WithTransportOptions(func(t *http.Transport) {
			t.TLSHandshakeTimeout = 10 * time.Second
			t.ResponseHeaderTimeout = 60 * time.Second
			t.MaxIdleConnsPerHost = 32
		})
}

// Client returns the SDK client (tests use it to look at the bucket).
func (s *Store) Client() *s3.Client { return s.client }

// Bucket returns the bucket's name.
func (s *Store) Bucket() string { return s.bucket }

// Put implements ports.ObjectStore.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (int64, error) {
	if err := storage.ValidateKey(key); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if size > s.partSize*maxParts {
		return 0, fmt.Errorf("s3store: put %s: %d bytes is more than %d parts of %d", key, size, maxParts, s.partSize)
	}
	bufp, ok := s.parts.Get().(*[]byte)
	if !ok {
		return 0, errors.New("s3store: part pool")
	}
	defer s.parts.Put(bufp)
	buf := *bufp
	body := ctxReader{ctx: ctx, r: r}

	if size >= 0 && size <= s.partSize {
		n, err := io.ReadFull(body, buf[:size])
		if err != nil {
			return 0, s.bodyErr(key, err, int64(n), size)
		}
		if err := expectEOF(body); err != nil {
			return 0, fmt.Errorf("s3store: put %s: %w (more than the %d bytes announced)", key, err, size)
		}
		return size, s.putObject(ctx, key, buf[:size], contentType)
	}
	n, err := io.ReadFull(body, buf)
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		// Unknown size, and all of it fits one part.
		if size >= 0 && int64(n) != size {
			return 0, s.bodyErr(key, io.ErrUnexpectedEOF, int64(n), size)
		}
		return int64(n), s.putObject(ctx, key, buf[:n], contentType)
	case err != nil:
		return 0, fmt.Errorf("s3store: put %s: %w", key, err)
	}
	// A full part: is there more? If not, one PutObject is enough.
	var next [1]byte
	m, err := io.ReadFull(body, next[:])
	switch {
	case errors.Is(err, io.EOF):
		if size >= 0 && int64(n) != size {
			return 0, s.bodyErr(key, io.ErrUnexpectedEOF, int64(n), size)
		}
		return int64(n), s.putObject(ctx, key, buf, contentType)
	case err != nil:
		return 0, fmt.Errorf("s3store: put %s: %w", key, err)
	}
	return s.multipart(ctx, key, io.MultiReader(bytes.NewReader(next[:m]), body), buf, size, contentType)
}

func (s *Store) bodyErr(key string, err error, got, want int64) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("s3store: put %s: the body had %d bytes, %d were announced: %w", key, got, want, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("s3store: put %s: %w", key, err)
}

// expectEOF fails unless r has nothing more.
func expectEOF(r io.Reader) error {
	var one [1]byte
	for {
		n, err := r.Read(one[:])
		if n > 0 {
			return errors.New("the body is longer than announced")
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (s *Store) putObject(ctx context.Context, key string, data []byte, contentType string) error {
	in := &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
	}
	if contentType != "" {
		in.ContentType = aws.String(contentType)
	}
	if s.sse != "" {
		in.ServerSideEncryption = s.sse
	}
	if _, err := s.client.PutObject(ctx, in); err != nil {
		return fmt.Errorf("s3store: put %s: %w", key, err)
	}
	return nil
}

// multipart uploads first (a full part already read) and the rest of body part by part
// through the same buffer, then completes the upload; on any failure it aborts it.
func (s *Store) multipart(ctx context.Context, key string, body io.Reader, buf []byte, size int64, contentType string) (total int64, err error) {
	in := &s3.CreateMultipartUploadInput{Bucket: aws.String(s.bucket), Key: aws.String(key)}
	if contentType != "" {
		in.ContentType = aws.String(contentType)
	}
	if s.sse != "" {
		in.ServerSideEncryption = s.sse
	}
	created, err := s.client.CreateMultipartUpload(ctx, in)
	if err != nil {
		return 0, fmt.Errorf("s3store: put %s: %w", key, err)
	}
	uploadID := created.UploadId
	defer func() {
		if err == nil {
			return
		}
		// The caller's context may be what failed: abort regardless, within a bound.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
		defer cancel()
		if _, abortErr := s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
			Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: uploadID,
		}); abortErr != nil {
			err = errors.Join(err, fmt.Errorf("s3store: abort upload of %s: %w", key, abortErr))
		}
	}()

	var parts []types.CompletedPart
	n := len(buf)
	for number := int32(1); ; number++ {
		if number > maxParts {
			return 0, fmt.Errorf("s3store: put %s: more than %d parts of %d bytes", key, maxParts, s.partSize)
		}
		out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: uploadID,
			PartNumber: aws.Int32(number), Body: bytes.NewReader(buf[:n]), ContentLength: aws.Int64(int64(n)),
		})
		if err != nil {
			return 0, fmt.Errorf("s3store: put %s: part %d: %w", key, number, err)
		}
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(number)})
		total += int64(n)
		if n < len(buf) {
			break // that was the last, short part
		}
		n, err = io.ReadFull(body, buf)
		if errors.Is(err, io.EOF) {
			break // the body ended with the previous part
		}
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, fmt.Errorf("s3store: put %s: %w", key, err)
		}
	}
	if size >= 0 && total != size {
		return 0, fmt.Errorf("s3store: put %s: the body had %d bytes, %d were announced", key, total, size)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if _, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}); err != nil {
		return 0, fmt.Errorf("s3store: put %s: complete: %w", key, err)
	}
	return total, nil
}

// Open implements ports.ObjectStore. ctx bounds the opening (a HeadObject); the object's
// reads are cancelled with ctx, but not by its deadline: how long a reader takes over the
// bytes is its own time (a content request's deadline is for its own work, and cut every
// download still going at 5 s, where the filesystem store's reads were never cut), and a
// server that stops sending fails the read after the stall timeout. Close releases it.
func (s *Store) Open(ctx context.Context, key string) (ports.Object, error) {
	info, etag, err := s.head(ctx, key)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			cancel()
		}
	})
	return &object{ctx: rctx, release: func() { stop(); cancel() }, store: s, info: info, etag: etag, end: info.Size}, nil
}

// Stat implements ports.ObjectStore.
func (s *Store) Stat(ctx context.Context, key string) (ports.ObjectInfo, error) {
	info, _, err := s.head(ctx, key)
	return info, err
}

func (s *Store) head(ctx context.Context, key string) (ports.ObjectInfo, *string, error) {
	if err := storage.ValidateKey(key); err != nil {
		return ports.ObjectInfo{}, nil, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return ports.ObjectInfo{}, nil, s.mapErr("stat", key, err)
	}
	info := ports.ObjectInfo{Key: key, Size: aws.ToInt64(out.ContentLength)}
	if out.LastModified != nil {
		info.Modified = out.LastModified.UTC()
	}
	return info, out.ETag, nil
}

// Delete implements ports.ObjectStore.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := storage.ValidateKey(key); err != nil {
		return err
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("s3store: delete %s: %w", key, err)
	}
	return nil
}

// List implements ports.ObjectStore with ListObjectsV2, page by page.
func (s *Store) List(ctx context.Context, prefix string, fn func(ports.ObjectInfo) error) error {
	if err := storage.ValidatePrefix(prefix); err != nil {
		return err
	}
	in := &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket)}
	if prefix != "" {
		in.Prefix = aws.String(prefix)
	}
	if s.listPageSize > 0 {
		in.MaxKeys = aws.Int32(s.listPageSize)
	}
	pages := s3.NewListObjectsV2Paginator(s.client, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("s3store: list %q: %w", prefix, err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if strings.HasSuffix(key, "/") {
				continue // a "folder" marker, not an object
			}
			info := ports.ObjectInfo{Key: key, Size: aws.ToInt64(o.Size)}
			if o.LastModified != nil {
				info.Modified = o.LastModified.UTC()
			}
			if err := fn(info); err != nil {
				return err
			}
		}
	}
	return nil
}

// Check implements ports.ObjectStore: a HeadBucket, tried once, within the check timeout.
func (s *Store) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.checkTimeout)
	defer cancel()
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)}, func(o *s3.Options) {
		o.RetryMaxAttempts = 1
	})
	if err != nil {
		return fmt.Errorf("s3store: bucket %s: %w", s.bucket, err)
	}
	return nil
}

// Sweep aborts the multipart uploads of the bucket started more than olderThan ago: what
// uploads left when their process was killed between CreateMultipartUpload and
// CompleteMultipartUpload (they are no objects, and List never reports them, but their parts
// take space). It returns how many it aborted. A bucket lifecycle rule
// (AbortIncompleteMultipartUpload) does the same on AWS.
func (s *Store) Sweep(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := time.Now().Add(-olderThan)
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(s.bucket)}
	aborted := 0
	for {
		page, err := s.client.ListMultipartUploads(ctx, in)
		if err != nil {
			return aborted, fmt.Errorf("s3store: sweep: %w", err)
		}
		for _, u := range page.Uploads {
			if u.Initiated != nil && !u.Initiated.Before(cutoff) {
				continue
			}
			if _, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
				Bucket: aws.String(s.bucket), Key: u.Key, UploadId: u.UploadId,
			}); err != nil && !isNoSuchUpload(err) {
				return aborted, fmt.Errorf("s3store: sweep: abort upload of %s: %w", aws.ToString(u.Key), err)
			}
			aborted++
		}
		if !aws.ToBool(page.IsTruncated) {
			return aborted, nil
		}
		in.KeyMarker, in.UploadIdMarker = page.NextKeyMarker, page.NextUploadIdMarker
	}
}

func isNoSuchUpload(err error) bool {
	var nsu *types.NoSuchUpload
	return errors.As(err, &nsu)
}

func (s *Store) mapErr(op, key string, err error) error {
	if isNotFound(err) {
		return fmt.Errorf("s3store: %s %s: %w", op, key, ports.ErrObjectNotFound)
	}
	return fmt.Errorf("s3store: %s %s: %w", op, key, err)
}

// isNotFound reports a missing object: NoSuchKey (GET), NotFound (HEAD's bodiless 404).
func isNotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		}
	}
	return false
}

// object is an open S3 object. Reads stream one ranged GET from the current offset to the
// end; a Seek elsewhere drops that stream and the next Read starts another. It is not safe
// for concurrent use (nor is an *os.File's offset).
type object struct {
	ctx     context.Context //nolint:containedctx // the object reads with the context it was opened with
	release context.CancelFunc
	store   *Store
	info    ports.ObjectInfo
	etag    *string
	off     int64
	// end bounds what a GET asks for (ports.ReadBounder); the object's size by default.
	end  int64
	body io.ReadCloser
	// bodyOff is the position of body's next byte, bodyEnd one past its last.
	bodyOff, bodyEnd int64
	closed           bool
}

var _ ports.ReadBounder = (*object)(nil)

// BoundReads implements ports.ReadBounder.
func (o *object) BoundReads(end int64) { o.end = min(max(end, 0), o.info.Size) }

func (o *object) Info() ports.ObjectInfo { return o.info }

func (o *object) Read(p []byte) (int, error) {
	if o.closed {
		return 0, errors.New("s3store: read of a closed object")
	}
	if o.off >= o.info.Size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if o.body != nil && o.bodyOff != o.off {
		o.dropBody()
	}
	if o.body == nil {
		// Up to the bound when the read starts before it, else to the end of the object.
		rng, end := fmt.Sprintf("bytes=%d-", o.off), o.info.Size
		if o.off < o.end && o.end < o.info.Size {
			rng, end = fmt.Sprintf("bytes=%d-%d", o.off, o.end-1), o.end
		}
		out, err := o.store.client.GetObject(o.ctx, &s3.GetObjectInput{
			Bucket: aws.String(o.store.bucket), Key: aws.String(o.info.Key),
			Range:   aws.String(rng),
			IfMatch: o.etag, // the object that was opened, not one put since
		})
		if err != nil {
			return 0, o.store.mapErr("read", o.info.Key, err)
		}
		o.body, o.bodyOff, o.bodyEnd = out.Body, o.off, end
	}
	if rest := o.bodyEnd - o.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := o.body.Read(p)
	o.off += int64(n)
	o.bodyOff += int64(n)
	if err == nil && o.off == o.bodyEnd && o.bodyEnd < o.info.Size {
		// The bounded range is read: a read past it asks again.
		o.dropBody()
		return n, nil
	}
	if errors.Is(err, io.EOF) {
		o.dropBody()
		if o.off < o.bodyEnd {
			if n > 0 {
				return n, nil // the next Read asks again from here
			}
			return 0, fmt.Errorf("s3store: read %s: %w", o.info.Key, io.ErrUnexpectedEOF)
		}
		err = nil
	}
	if err != nil {
		o.dropBody()
		return n, fmt.Errorf("s3store: read %s: %w", o.info.Key, err)
	}
	return n, nil
}

func (o *object) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = o.off + offset
	case io.SeekEnd:
		abs = o.info.Size + offset
	default:
		return 0, errors.New("s3store: seek: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("s3store: seek: negative position")
	}
	o.off = abs
	return abs, nil
}

func (o *object) Close() error {
	if o.closed {
		return nil
	}
	o.closed = true
	o.dropBody()
	o.release()
	return nil
}

func (o *object) dropBody() {
	if o.body != nil {
		_ = o.body.Close()
		o.body = nil
	}
}

// ctxReader stops reading a body at the first read after ctx is done.
type ctxReader struct {
	ctx context.Context //nolint:containedctx // lives for one Put only
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
