package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/domain"
)

// ProblemTypePrefix starts the "type" of every problem document; the stable code follows it
// ("/problems/email_taken"). One prefix for every problem keeps the type and the code in
// step, so a client may switch on either.
//
// The type is a relative reference to the page this service itself serves for the code (GET
// /problems/{code}, problems.go): RFC 9457 (section 3.1.1) allows a URI reference and asks
// that a relative one carry the full path, as this does. Resolved against the request's URL it
// leads to the explanation on whichever host answered, without the service having to know the
// public name it is reached by, and without pointing at a domain the project does not own.
const ProblemTypePrefix = "/problems/"

// The kernel's problem codes: the stable snake_case strings clients switch on. Each context
// declares its own with its errors (domain.NewError) and documents them in its module
// (Routes.Problems).
const (
	CodeValidationFailed     = "validation_failed"
	CodeMalformedRequest     = "malformed_request"
	CodePayloadTooLarge      = "payload_too_large"
	CodeUnsupportedMediaType = "unsupported_media_type"
	// CodeRangeNotSatisfiable: a Range header that selects none of the content's bytes.
	CodeRangeNotSatisfiable = "range_not_satisfiable"
	// CodePreconditionFailed: an If-Match or If-Unmodified-Since that the content's current
	// version does not meet.
	CodePreconditionFailed = "precondition_failed"
	CodeUnauthenticated    = "unauthenticated"
	CodeForbidden          = "forbidden"
	// CodeQuotaExceeded: a write that would take the caller past a storage quota (posts,
	// ECGs, images each have one); the contexts' errors carry it.
	CodeQuotaExceeded    = "quota_exceeded"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeTooManyAttempts  = "too_many_attempts"
	CodeUnavailable      = "unavailable"
	CodeOverloaded       = "overloaded"
	CodeRequestTimeout   = "request_timeout"
	CodeInternalError    = "internal_error"
	// The requests net/http refuses before routing (refusals.go): request line and headers
	// over MaxHeaderBytes (a long URL counts), a Transfer-Encoding other than chunked, a
	// version other than HTTP/1.x, an Expect other than 100-continue.
	CodeHeadersTooLarge             = "headers_too_large"
	CodeUnsupportedTransferEncoding = "unsupported_transfer_encoding"
	CodeHTTPVersionNotSupported     = "http_version_not_supported"
	CodeExpectationFailed           = "expectation_failed"
)

// problemContentType is the media type of RFC 9457 problem documents.
const problemContentType = "application/problem+json"

// unavailableRetryAfter is the Retry-After, in seconds, of a 503 unavailable; overloaded
// answers ask for a shorter wait, since the work that crowded this request out takes about a
// second to drain.
const (
	unavailableRetryAfter = "5"
	overloadedRetryAfter  = "1"
)

// Problem is an RFC 9457 problem document with the service's "code" extension and, for
// validation failures, the list of invalid fields.
type Problem struct {
	Type   string              `json:"type"`
	Title  string              `json:"title"`
	Status int                 `json:"status"`
	Detail string              `json:"detail"`
	Code   string              `json:"code"`
	Errors []ProblemFieldError `json:"errors,omitempty"`
	// IDs lists the ids of a request that the failure concerns (domain.IDsError), such as
	// those of a bulk delete that are not the caller's.
	IDs []string `json:"ids,omitempty"`
}

// ProblemFieldError names one invalid field of a validation problem.
type ProblemFieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// newProblem builds a problem document for a code.
func newProblem(status int, code, detail string) Problem {
	return Problem{Type: ProblemTypePrefix + code, Title: kernelProblems.title(code), Status: status, Detail: detail, Code: code}
}

// writeProblem sends p and stops the handler chain.
func writeProblem(c *gin.Context, p Problem) {
	sendProblem(c.Writer, p)
	c.Abort()
}

// WriteProblem answers a request served outside the API's router (the operations listener's
// unknown paths) with the problem document of a kernel code, as the router would.
func WriteProblem(w http.ResponseWriter, status int, code, detail string) {
	sendProblem(w, newProblem(status, code, detail))
}

// sendProblem writes p as the whole response.
func sendProblem(w http.ResponseWriter, p Problem) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// A Problem holds only strings and ints: encoding cannot fail.
	_ = enc.Encode(p)
	w.Header().Set("Content-Type", problemContentType)
	// Its length is known: a problem sent before the handler ends (flushed ahead of slow
	// clean-up) is complete on arrival, not a chunked body that ends with the handler.
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(p.Status)
	_, _ = w.Write(buf.Bytes())
}

// statusOf is the HTTP status of each kind of failure. The mapper knows kinds, never a
// context's errors: a new context declares its errors with a kind and a code, and needs no
// edit here.
var statusOf = map[domain.Kind]int{
	domain.KindInvalid:         http.StatusUnprocessableEntity,
	domain.KindMalformed:       http.StatusBadRequest,
	domain.KindUnauthenticated: http.StatusUnauthorized,
	domain.KindForbidden:       http.StatusForbidden,
	domain.KindNotFound:        http.StatusNotFound,
	domain.KindConflict:        http.StatusConflict,
	domain.KindTooLarge:        http.StatusRequestEntityTooLarge,
	domain.KindUnsupported:     http.StatusUnsupportedMediaType,
	domain.KindThrottled:       http.StatusTooManyRequests,
	domain.KindTimeout:         http.StatusRequestTimeout,
	domain.KindUnavailable:     http.StatusServiceUnavailable,
	domain.KindOverloaded:      http.StatusServiceUnavailable,
}

// fail is the one error mapper: every handler and middleware error reaches the client through
// it. An error that describes itself (domain.Error, found with errors.As anywhere in the
// chain) is answered by its kind, with its code and its message; infrastructure trouble is
// looked for first, so an outage is never disguised as a business answer. Anything else is a
// 500 whose text is logged, never sent.
func (s *server) fail(c *gin.Context, err error) {
	kind := domain.KindOf(err)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.Is(err, context.Canceled) && bodyTimedOut(c):
		// Cancelled because the client was too slow to send its body (see deadlineWatch).
		// The context error is only quoted: wrapped, it would bring the answer back here.
		s.bodyReadError(c, fmt.Errorf("%w (the request was cancelled with it: %s)", os.ErrDeadlineExceeded, err.Error()))
	case kind == domain.KindOverloaded:
		c.Header("Retry-After", overloadedRetryAfter)
		s.describe(c, http.StatusServiceUnavailable, domain.ErrOverloaded.Code(), domain.ErrOverloaded.Error())
	case kind == domain.KindUnavailable, errors.Is(err, context.DeadlineExceeded):
		s.logAt(c, slog.LevelWarn, "dependency unavailable", err)
		s.unavailable(c, domain.ErrUnavailable.Error())
	case errors.Is(err, context.Canceled):
		// The client went away or the server is stopping; nobody is likely to read this.
		// The log and the metrics record it as 499, not as the 503 sent (RecordedStatus).
		c.Set(clientGoneKey{}, true)
		s.logAt(c, slog.LevelInfo, "request canceled", err)
		s.unavailable(c, "The request was canceled before it completed.")
	case errors.As(err, &tooLarge):
		// The body limit of the route, met while reading: the rest of the body is unread.
		c.Header("Connection", "close")
		writeProblem(c, newProblem(http.StatusRequestEntityTooLarge, CodePayloadTooLarge,
			"The request body must be at most "+strconv.FormatInt(tooLarge.Limit, 10)+" bytes."))
	case kind == domain.KindInternal:
		s.logAt(c, slog.LevelError, "unhandled error", err)
		writeProblem(c, newProblem(http.StatusInternalServerError, CodeInternalError, "An unexpected error occurred."))
	default:
		s.described(c, kind, err)
	}
}

// described answers a failure that describes itself.
func (s *server) described(c *gin.Context, kind domain.Kind, err error) {
	var (
		de         domain.Error
		validation *domain.ValidationError
		withIDs    *domain.IDsError
		retry      interface{ RetryAfterDuration() time.Duration }
	)
	errors.As(err, &de)
	status := statusOf[kind]
	switch kind {
	case domain.KindUnauthenticated:
		if de.Code() == CodeUnauthenticated {
			s.unauthenticated(c, hasBearerToken(c))
			return
		}
		c.Header("WWW-Authenticate", "Bearer")
	case domain.KindThrottled:
		if errors.As(err, &retry) {
			secs := max(int64(math.Ceil(retry.RetryAfterDuration().Seconds())), 1)
			c.Header("Retry-After", strconv.FormatInt(secs, 10))
		}
	case domain.KindTimeout:
		c.Header("Connection", "close")
	}
	p := newProblem(status, de.Code(), de.Error())
	p.Title = s.problems.title(de.Code())
	if errors.As(err, &validation) {
		p.Errors = make([]ProblemFieldError, 0, len(validation.Fields))
		for _, f := range validation.Fields {
			p.Errors = append(p.Errors, ProblemFieldError{Field: f.Field, Message: f.Message})
		}
	}
	if errors.As(err, &withIDs) {
		p.IDs = withIDs.IDs
	}
	writeProblem(c, p)
}

// describe answers a problem with a code and a detail.
func (s *server) describe(c *gin.Context, status int, code, detail string) {
	writeProblem(c, newProblem(status, code, detail))
}

// unavailable answers 503 with Retry-After.
func (s *server) unavailable(c *gin.Context, detail string) {
	c.Header("Retry-After", unavailableRetryAfter)
	writeProblem(c, newProblem(http.StatusServiceUnavailable, CodeUnavailable, detail))
}

// unauthenticated answers 401 with the WWW-Authenticate challenge of RFC 6750; invalidToken
// says a bearer token was presented and refused.
func (s *server) unauthenticated(c *gin.Context, invalidToken bool) {
	challenge := "Bearer"
	if invalidToken {
		challenge = `Bearer error="invalid_token"`
	}
	c.Header("WWW-Authenticate", challenge)
	writeProblem(c, newProblem(http.StatusUnauthorized, CodeUnauthenticated, "A valid access token is required."))
}

// malformed answers 400 malformed_request.
func malformed(c *gin.Context, detail string) {
	writeProblem(c, newProblem(http.StatusBadRequest, CodeMalformedRequest, detail))
}

// logAt logs err once, with the request id and route.
func (s *server) logAt(c *gin.Context, level slog.Level, msg string, err error) {
	s.log.LogAttrs(c.Request.Context(), level, msg,
		slog.String("request_id", RequestIDFrom(c.Request.Context())),
		slog.String("method", c.Request.Method),
		slog.String("route", RouteOf(c)),
		slog.String("error", err.Error()),
	)
}
