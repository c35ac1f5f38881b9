package mediahttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/media/image"
	mediaport "github.com/acme/postsvc/ports/media"
)

// maxFieldBytes bounds a form field of an upload: a description of 1,000 characters takes at
// most 4,000 bytes of UTF-8, tags less.
const maxFieldBytes = 8 << 10

// upload reads a multipart upload as a stream: the form fields first, then each file part,
// cleaned and stored as it arrives, so the request is never in memory. Any refused file
// refuses the request: the files stored before it are removed.
//
// The route has no timeout of its own, so authentication, like every request's, has the
// service's request timeout (APP_HTTP_REQUEST_TIMEOUT), and so has each database step of the
// upload: the quota check that begins it gets what was left of that budget when the handler
// started, counted from when it runs (the fields before it may arrive slowly), and the commit
// gets it again once the body is read (httpapi.Received). Only cleaning and storing the files
// as they arrive get the upload's own, longer bound (Settings.UploadTimeout). With that bound
// on the whole route, a stalled database held an upload for the driver's read timeout (10 s)
// before its 503, twice the time of any other request.
func (m *Module) upload(c *gin.Context) {
	p, ok := httpapi.PrincipalOf(c)
	if !ok {
		return
	}
	dbBudget, bounded := remaining(c.Request.Context())
	work, endWork := filesContext(c.Request.Context(), m.s.UploadTimeout)
	defer endWork()
	begin := func(draft image.DetailsDraft) (mediaport.Upload, error) {
		ctx := work
		if bounded {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(work, dbBudget)
			defer cancel()
		}
		return m.svc.BeginUpload(ctx, p, draft)
	}
	filter := filterPartHeaders(c)
	mr, release, ok := httpapi.Multipart(c)
	if !ok {
		return
	}
	defer release()
	var draft image.DetailsDraft
	var up mediaport.Upload
	defer func() {
		if up != nil {
			// A failed upload's answer goes out before its objects are removed: removing
			// them waits out a stalled object store (seconds), which the client need not.
			if c.Writer.Written() {
				c.Writer.Flush()
			}
			up.Abort() // no-op once committed
		}
	}()
	files := 0
	for parts := 1; ; parts++ {
		part, err := mr.NextPart()
		// Only the reader's own io.EOF, after the closing boundary, ends the parts. It wraps
		// io.EOF for a body that ends before that (none at all, another boundary than the
		// Content-Type's, a cut-off body), which was taken for the end and answered 422 "at
		// least one file part is required": it is a malformed body (400, BodyError).
		if err == io.EOF { //nolint:errorlint // see above: a wrapped io.EOF is a body cut short
			break
		}
		if err != nil && filter.Err() != nil {
			c.Header("Connection", "close") // the rest of the body is not read
			httpapi.Malformed(c, fmt.Sprintf("The headers of part %d of the multipart body are over %d bytes.", parts, maxPartHeaderBytes))
			return
		}
		if err != nil {
			httpapi.BodyError(c, err)
			return
		}
		if part.FormName() == "" {
			// RFC 7578 section 4.2: every part names its field in a Content-Disposition:
			// form-data header. One without (no such header, another disposition, a header
			// that does not parse, such as one with two filename parameters) was read as an
			// unnamed form field: 400 "The form field "" is not valid UTF-8" for a file's
			// bytes, 422 for an "unknown form field" named "" for text.
			httpapi.Malformed(c, fmt.Sprintf("Part %d of the multipart body has no Content-Disposition: form-data header with a name.", parts))
			return
		}
		if part.FileName() == "" && part.FormName() != "file" {
			// Fields normally come first; one that follows a file part (form builders, the
			// /docs page's among them, order fields their own way) still applies to every
			// file, since the files' rows are only written at the end.
			name := part.FormName()
			if !readField(c, part, &draft) {
				return
			}
			if up != nil {
				if err := up.Details(fieldOf(draft, name)); err != nil {
					httpapi.Fail(c, err)
					return
				}
			}
			continue
		}
		if part.FormName() != "file" {
			httpapi.Fail(c, domain.Invalid(part.FormName(), `unknown file part: files are sent as parts named "file"`))
			return
		}
		files++
		if files > m.s.MaxFiles {
			c.Header("Connection", "close")
			httpapi.Fail(c, domain.TooLarge(fmt.Sprintf("An upload holds at most %d files; nothing was stored.", m.s.MaxFiles)))
			return
		}
		if up == nil {
			if up, err = begin(draft); err != nil {
				httpapi.Fail(c, err)
				return
			}
		}
		if !m.addFile(work, c, up, part) {
			return
		}
	}
	if up == nil {
		var err error
		if up, err = begin(draft); err != nil {
			httpapi.Fail(c, err)
			return
		}
	}
	// The body is read and the files stored: the commit gets the request's budget again.
	// Received replaces the request's context (cancelling the one the files' context follows,
	// which is ended first), so it is read again from the request.
	endWork()
	httpapi.Received(c, 0)
	images, err := up.Commit(c.Request.Context())
	if err != nil {
		httpapi.Fail(c, err)
		return
	}
	httpapi.WriteJSON(c, http.StatusCreated, imagesJSON{Images: imagesOf(images)})
}

// addFile stores one file part. The part is read through a limit of its own; a failure to
// read the body (too large, too slow, malformed) is answered as such, whatever cleaning the
// file made of it.
func (m *Module) addFile(ctx context.Context, c *gin.Context, up mediaport.Upload, part *multipart.Part) bool {
	r := &fileReader{
		r: part, limit: m.s.MaxFileBytes, left: m.s.MaxFileBytes, name: image.CleanFilename(part.FileName(), ""),
		worked: func(d time.Duration) { httpapi.ReadTimeFor(c, d) },
	}
	err := up.Add(ctx, part.FileName(), r)
	r.reportWork() // after the file's last read: finishing the object in the store
	if err == nil {
		// Bytes after the image's end are not stored, but they count against the file's
		// limit like the rest of the part.
		_, _ = io.Copy(io.Discard, r)
	}
	switch {
	case r.err != nil && r.tooLarge:
		c.Header("Connection", "close")
		httpapi.Fail(c, r.err)
	case r.err != nil:
		httpapi.BodyError(c, r.err)
	case err != nil:
		httpapi.Fail(c, err)
	default:
		return true
	}
	return false
}

// remaining is how much of ctx's deadline is left, and whether it has one.
func remaining(ctx context.Context) (time.Duration, bool) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return 0, false
	}
	return max(time.Until(deadline), 0), true
}

// filesContext is the context in which an upload's files are cleaned and stored as they
// arrive: bounded by d (when positive) instead of the request's deadline, which is for
// database work, and cancelled when the request is cancelled for any other reason (the
// client went away, the server is stopping). end releases it; call it before httpapi.Received,
// which cancels the request's context to replace it.
func filesContext(req context.Context, d time.Duration) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(req))
	if d > 0 {
		var cancelTimeout context.CancelFunc
		ctx, cancelTimeout = context.WithTimeout(ctx, d)
		cancelBoth := cancel
		cancel = func() { cancelTimeout(); cancelBoth() }
	}
	stop := context.AfterFunc(req, func() {
		if !errors.Is(req.Err(), context.DeadlineExceeded) {
			cancel()
		}
	})
	return ctx, func() {
		stop()
		cancel()
	}
}

// fileReader reads one file part, failing once it passes the file limit, and remembers the
// first error of the body so that the handler can tell it from a failure of the image. The
// time between one read's return and the next read is the server's (cleaning, storing):
// worked hears of it, so that it does not count against the client's read timeout.
type fileReader struct {
	r        io.Reader
	limit    int64
	left     int64
	name     string
	err      error
	tooLarge bool
	worked   func(time.Duration)
	lastRead time.Time
}

// minWorkReported is the least work between two reads that moves the read deadline: shorter
// gaps are the cleaner's ordinary pace and would only cost a deadline update per read.
const minWorkReported = 5 * time.Millisecond

// reportWork hands worked the time since the last read returned, once.
func (f *fileReader) reportWork() {
	if f.worked == nil || f.lastRead.IsZero() {
		return
	}
	if work := time.Since(f.lastRead); work >= minWorkReported {
		f.worked(work)
		f.lastRead = time.Now()
	}
}

func (f *fileReader) Read(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	f.reportWork()
	defer func() { f.lastRead = time.Now() }()
	if int64(len(p)) > f.left+1 {
		p = p[:f.left+1]
	}
	n, err := f.r.Read(p)
	f.left -= int64(n)
	if f.left < 0 {
		f.tooLarge = true
		f.err = domain.TooLarge(fmt.Sprintf("The file %s is over the limit of %d bytes a file; nothing was stored.",
			strconv.Quote(f.name), f.limit))
		return 0, f.err
	}
	if err != nil && !errors.Is(err, io.EOF) {
		f.err = err
	}
	return n, err
}

// fieldOf is the draft of one field of d.
func fieldOf(d image.DetailsDraft, name string) image.DetailsDraft {
	switch name {
	case "visibility":
		return image.DetailsDraft{Visibility: d.Visibility}
	case "description":
		return image.DetailsDraft{Description: d.Description}
	case "tags":
		return image.DetailsDraft{Tags: d.Tags}
	}
	return image.DetailsDraft{}
}

// readField reads one form field into draft. Unknown and repeated fields are refused, so a
// misspelt field is not silently ignored.
func readField(c *gin.Context, part *multipart.Part, draft *image.DetailsDraft) bool {
	name := part.FormName()
	value, err := io.ReadAll(io.LimitReader(part, maxFieldBytes+1))
	if err != nil {
		httpapi.BodyError(c, err)
		return false
	}
	if len(value) > maxFieldBytes {
		httpapi.Fail(c, domain.Invalid(name, fmt.Sprintf("must be at most %d bytes", maxFieldBytes)))
		return false
	}
	if !utf8.Valid(value) {
		// As in a JSON body or a query string: text that is not Unicode is malformed (400),
		// not an invalid value.
		httpapi.Malformed(c, fmt.Sprintf("The form field %q is not valid UTF-8.", name))
		return false
	}
	s := string(value)
	var repeated bool
	switch name {
	case "visibility":
		repeated = draft.Visibility != nil
		draft.Visibility = &s
	case "description":
		repeated = draft.Description != nil
		draft.Description = &s
	case "tags":
		repeated = draft.Tags != nil
		tags := image.SplitTags(s)
		draft.Tags = &tags
	default:
		httpapi.Fail(c, domain.Invalid(name, "unknown form field: the fields are visibility, description and tags, then file parts"))
		return false
	}
	if repeated {
		httpapi.Fail(c, domain.Invalid(name, "is sent more than once"))
		return false
	}
	return true
}
