package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/post"
	"github.com/acme/postsvc/domain/session"
	"github.com/acme/postsvc/domain/user"
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

// Problem codes: the stable snake_case strings clients switch on.
const (
	CodeValidationFailed     = "validation_failed"
	CodeMalformedRequest     = "malformed_request"
	CodePayloadTooLarge      = "payload_too_large"
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodeEmailTaken           = "email_taken"
	CodeInvalidCredentials   = "invalid_credentials" //nolint:gosec // G101: a problem code, not a credential
	CodeInvalidRefreshToken  = "invalid_refresh_token"
	CodeUnauthenticated      = "unauthenticated"
	CodeForbidden            = "forbidden"
	CodePostNotFound         = "post_not_found"
	CodeUserNotFound         = "user_not_found"
	CodeNotFound             = "not_found"
	CodeMethodNotAllowed     = "method_not_allowed"
	CodeLastAdmin            = "last_admin"
	CodeTooManyAttempts      = "too_many_attempts"
	CodeUnavailable          = "unavailable"
	CodeOverloaded           = "overloaded"
	CodeRequestTimeout       = "request_timeout"
	CodeInternalError        = "internal_error"
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
}

// ProblemFieldError names one invalid field of a validation problem.
type ProblemFieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// titles are the short, fixed summaries of each code; the detail says what happened this time.
var titles = map[string]string{ //nolint:gosec // G101: problem titles, not credentials
	CodeValidationFailed:     "Validation failed",
	CodeMalformedRequest:     "Malformed request",
	CodePayloadTooLarge:      "Payload too large",
	CodeUnsupportedMediaType: "Unsupported media type",
	CodeEmailTaken:           "Email already registered",
	CodeInvalidCredentials:   "Invalid credentials",
	CodeInvalidRefreshToken:  "Invalid refresh token",
	CodeUnauthenticated:      "Unauthenticated",
	CodeForbidden:            "Forbidden",
	CodePostNotFound:         "Post not found",
	CodeUserNotFound:         "User not found",
	CodeNotFound:             "Not found",
	CodeMethodNotAllowed:     "Method not allowed",
	CodeLastAdmin:            "Last admin",
	CodeTooManyAttempts:      "Too many attempts",
	CodeUnavailable:          "Service unavailable",
	CodeOverloaded:           "Service overloaded",
	CodeRequestTimeout:       "Request timeout",
	CodeInternalError:        "Internal server error",
}

// newProblem builds a problem document for a code.
func newProblem(status int, code, detail string) Problem {
	return Problem{Type: ProblemTypePrefix + code, Title: titles[code], Status: status, Detail: detail, Code: code}
}

// writeProblem sends p and stops the handler chain.
func writeProblem(c *gin.Context, p Problem) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// A Problem holds only strings and ints: encoding cannot fail.
	_ = enc.Encode(p)
	c.Header("Content-Type", problemContentType)
	c.Status(p.Status)
	_, _ = c.Writer.Write(buf.Bytes())
	c.Abort()
}

// fail is the one error mapper: every handler and middleware error reaches the client through
// it. Errors are matched with errors.Is and errors.As only; infrastructure failures are
// checked first so that an outage is never disguised as a business answer. The text of an
// unrecognised error is logged, never sent.
func (s *server) fail(c *gin.Context, err error) {
	var (
		validation *domain.ValidationError
		throttled  *domain.ThrottledError
		tooLarge   *http.MaxBytesError
	)
	switch {
	case errors.Is(err, domain.ErrOverloaded):
		// Checked before the timeouts: shedding is decided at once, never by waiting.
		c.Header("Retry-After", overloadedRetryAfter)
		writeProblem(c, newProblem(http.StatusServiceUnavailable, CodeOverloaded,
			"The service is busy and shed this request; retry in a moment."))
	case errors.Is(err, domain.ErrRequestTimeout):
		c.Header("Connection", "close")
		writeProblem(c, newProblem(http.StatusRequestTimeout, CodeRequestTimeout,
			"The request body was not received within the read timeout."))
	case errors.Is(err, domain.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		s.logAt(c, slog.LevelWarn, "dependency unavailable", err)
		s.unavailable(c, "The service is temporarily unavailable; retry later.")
	case errors.Is(err, context.Canceled):
		// The client went away or the server is stopping; nobody is likely to read this.
		s.logAt(c, slog.LevelInfo, "request canceled", err)
		s.unavailable(c, "The request was canceled before it completed.")
	case errors.As(err, &validation):
		p := newProblem(http.StatusUnprocessableEntity, CodeValidationFailed, validationDetail(validation))
		p.Errors = make([]ProblemFieldError, 0, len(validation.Fields))
		for _, f := range validation.Fields {
			p.Errors = append(p.Errors, ProblemFieldError{Field: f.Field, Message: f.Message})
		}
		writeProblem(c, p)
	case errors.As(err, &tooLarge):
		c.Header("Connection", "close")
		writeProblem(c, newProblem(http.StatusRequestEntityTooLarge, CodePayloadTooLarge,
			"The request body must be at most "+strconv.FormatInt(tooLarge.Limit, 10)+" bytes."))
	case errors.Is(err, domain.ErrPayloadTooLarge):
		writeProblem(c, newProblem(http.StatusRequestEntityTooLarge, CodePayloadTooLarge,
			"The request exceeds a size limit (a post's text is at most "+strconv.Itoa(post.MaxTextBytes)+" bytes)."))
	case errors.As(err, &throttled):
		secs := int64(math.Ceil(throttled.RetryAfter.Seconds()))
		if secs < 1 {
			secs = 1
		}
		c.Header("Retry-After", strconv.FormatInt(secs, 10))
		writeProblem(c, newProblem(http.StatusTooManyRequests, CodeTooManyAttempts,
			"Too many failed attempts; retry after "+strconv.FormatInt(secs, 10)+" seconds."))
	case errors.Is(err, user.ErrEmailTaken):
		writeProblem(c, newProblem(http.StatusConflict, CodeEmailTaken, "An account with this email already exists."))
	case errors.Is(err, user.ErrInvalidCredentials):
		c.Header("WWW-Authenticate", "Bearer")
		writeProblem(c, newProblem(http.StatusUnauthorized, CodeInvalidCredentials, "The email or the password is incorrect."))
	case errors.Is(err, session.ErrInvalidRefreshToken), errors.Is(err, session.ErrReuse):
		c.Header("WWW-Authenticate", "Bearer")
		writeProblem(c, newProblem(http.StatusUnauthorized, CodeInvalidRefreshToken,
			"The refresh token is invalid, expired or already used."))
	case errors.Is(err, domain.ErrUnauthenticated):
		s.unauthenticated(c, hasBearerToken(c))
	case errors.Is(err, domain.ErrForbidden):
		writeProblem(c, newProblem(http.StatusForbidden, CodeForbidden, "Your role does not allow this operation."))
	case errors.Is(err, post.ErrNotFound):
		writeProblem(c, newProblem(http.StatusNotFound, CodePostNotFound, "There is no such post."))
	case errors.Is(err, user.ErrNotFound):
		writeProblem(c, newProblem(http.StatusNotFound, CodeUserNotFound, "There is no such user."))
	case errors.Is(err, user.ErrLastAdmin):
		writeProblem(c, newProblem(http.StatusConflict, CodeLastAdmin, "The service must keep at least one admin."))
	default:
		s.logAt(c, slog.LevelError, "unhandled error", err)
		writeProblem(c, newProblem(http.StatusInternalServerError, CodeInternalError, "An unexpected error occurred."))
	}
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
		slog.String("route", c.FullPath()),
		slog.String("error", err.Error()),
	)
}

// validationDetail summarises a validation error in one sentence; each message is the
// domain's own text, never client input.
func validationDetail(v *domain.ValidationError) string {
	parts := make([]string, 0, len(v.Fields))
	for _, f := range v.Fields {
		if f.Field == "" {
			parts = append(parts, f.Message)
			continue
		}
		parts = append(parts, f.Field+" "+f.Message)
	}
	if len(parts) == 0 {
		return "The request is invalid."
	}
	return strings.Join(parts, "; ") + "."
}
