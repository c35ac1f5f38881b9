package httpapi

import (
	"bytes"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
)

// kernelDocs document the kernel's own problem codes; modules document theirs
// (Routes.Problems). GET /problems/{code} serves the page of each: title, status, what it
// means and what a client should do. Every problem document's "type" leads to it.
var kernelDocs = []ProblemDoc{
	{Code: CodeValidationFailed, Status: http.StatusUnprocessableEntity, Title: "Validation failed",
		Meaning: "The request was well-formed, but one or more values are not acceptable: an email that is not an address, a password that is too short, a limit out of range, a cursor the service did not issue.",
		Action:  "Read errors in the problem document: each entry names a field and says what is wrong with it. Correct those values and send the request again; sending it unchanged fails the same way."},
	{Code: CodeMalformedRequest, Status: http.StatusBadRequest, Title: "Malformed request",
		Meaning: "The request could not be read: the body is not a single JSON object, a field has the wrong JSON type, text is not valid Unicode, the query string cannot be decoded, or the request is not valid HTTP/1.1 (a request line or header that cannot be parsed, a missing Host header, Content-Length given twice).",
		Action:  "Fix how the client encodes the request; sending it unchanged fails the same way."},
	{Code: CodePayloadTooLarge, Status: http.StatusRequestEntityTooLarge, Title: "Payload too large",
		Meaning: "The request body is larger than the endpoint accepts (a post's text is at most 1 MiB). It was refused without being read to the end, and the connection was closed.",
		Action:  "Send a smaller body."},
	{Code: CodeRangeNotSatisfiable, Status: http.StatusRequestedRangeNotSatisfiable, Title: "Range not satisfiable",
		Meaning: "The Range header selects none of the content's bytes (a range that starts past its end, a suffix of zero bytes, or a header that is not a byte range). Content-Range says how long the content is.",
		Action:  "Ask for a range inside the content, or leave out Range to get all of it."},
	{Code: CodePreconditionFailed, Status: http.StatusPreconditionFailed, Title: "Precondition failed",
		Meaning: "The request was conditional (If-Match, If-Unmodified-Since) and the content's current version does not meet the condition: it is not the version the client had.",
		Action:  "Read the content again without the condition (its ETag says which version it is), then decide."},
	{Code: CodeUnsupportedMediaType, Status: http.StatusUnsupportedMediaType, Title: "Unsupported media type",
		Meaning: "The request body was not sent as JSON.",
		Action:  "Send the body as JSON with the header Content-Type: application/json."},
	{Code: CodeUnauthenticated, Status: http.StatusUnauthorized, Title: "Unauthenticated",
		Meaning: "The request needs a valid access token, and it had none, or its token is malformed, expired, altered, or belongs to a session that has ended.",
		Action:  "Refresh the session and retry with the new access token; if refreshing fails, log in again."},
	{Code: CodeForbidden, Status: http.StatusForbidden, Title: "Forbidden",
		Meaning: "The caller is authenticated, but may not do this: administrators hold no content, only administrators manage accounts, and logging out and managing API keys need a login session, not a personal API key.",
		Action:  "Do not retry with the same credentials; use an account with the role the operation needs."},
	{Code: CodeQuotaExceeded, Status: http.StatusForbidden, Title: "Storage quota exceeded",
		Meaning: "Storing this would take the caller past their storage quota for this kind of content: the texts of their posts (APP_POSTS_QUOTA_BYTES), the samples of their ECGs (APP_ECG_QUOTA_BYTES) or their images (APP_MEDIA_QUOTA_BYTES). Nothing of the request was stored.",
		Action:  "Delete posts, ECGs or images you no longer need, then send the request again."},
	{Code: CodeNotFound, Status: http.StatusNotFound, Title: "Not found",
		Meaning: "There is nothing at this path.",
		Action:  "Check the path against the API documentation at /docs."},
	{Code: CodeMethodNotAllowed, Status: http.StatusMethodNotAllowed, Title: "Method not allowed",
		Meaning: "The path exists but does not support this method. The Allow header lists the methods it does support.",
		Action:  "Use one of the methods in the Allow header."},
	{Code: CodeTooManyAttempts, Status: http.StatusTooManyRequests, Title: "Too many attempts",
		Meaning: "Too many attempts for this account or from this client address within the throttle window.",
		Action:  "Wait the number of seconds in the Retry-After header before trying again."},
	{Code: CodeUnavailable, Status: http.StatusServiceUnavailable, Title: "Service unavailable",
		Meaning: "A dependency of the service, usually its database, cannot be reached right now, or this instance is shutting down. It says nothing about the request itself.",
		Action:  "Retry after the number of seconds in the Retry-After header, backing off if it happens again."},
	{Code: CodeOverloaded, Status: http.StatusServiceUnavailable, Title: "Service overloaded",
		Meaning: "The service is busy and shed this request at once, without working on it: more password checks are waiting than it can run soon, the request bodies being read already hold the memory set aside for them, or the server already holds as many connections as it serves at once (the request was then not read, and the connection was closed).",
		Action:  "Retry after the number of seconds in the Retry-After header."},
	{Code: CodeRequestTimeout, Status: http.StatusRequestTimeout, Title: "Request timeout",
		Meaning: "The request body did not arrive completely within the server's read timeout, so the request was abandoned and the connection closed.",
		Action:  "Retry, over a faster connection or with a smaller body."},
	{Code: CodeInternalError, Status: http.StatusInternalServerError, Title: "Internal server error",
		Meaning: "Something unexpected failed inside the service. The cause is logged with the request's id and never sent to clients.",
		Action:  "Retry later. If it keeps happening, report the X-Request-ID header of the response."},
	{Code: CodeHeadersTooLarge, Status: http.StatusRequestHeaderFieldsTooLarge, Title: "Request headers too large",
		Meaning: "The request line and headers together are larger than the server reads (64 KiB). A very long URL or query string counts. The connection was closed.",
		Action:  "Send a shorter URL or fewer, smaller headers; long values belong in a request body."},
	{Code: CodeUnsupportedTransferEncoding, Status: http.StatusNotImplemented, Title: "Unsupported transfer encoding",
		Meaning: "The request's Transfer-Encoding is not one the server understands: only chunked is. The connection was closed.",
		Action:  "Send the body with Content-Length or Transfer-Encoding: chunked. To compress a body, use Content-Encoding where an operation accepts it."},
	{Code: CodeHTTPVersionNotSupported, Status: http.StatusHTTPVersionNotSupported, Title: "HTTP version not supported",
		Meaning: "The request line names an HTTP version the server does not serve over this connection: it serves HTTP/1.1 (and HTTP/1.0). The connection was closed.",
		Action:  "Send the request as HTTP/1.1."},
	{Code: CodeExpectationFailed, Status: http.StatusExpectationFailed, Title: "Expectation failed",
		Meaning: "The request's Expect header asks for something other than 100-continue, the only expectation the server meets. The connection was closed.",
		Action:  "Leave out Expect, or send Expect: 100-continue."},
}

// problemRegistry holds the documentation of every problem code the router can answer.
type problemRegistry struct {
	docs  map[string]ProblemDoc
	pages map[string][]byte
}

// kernelProblems documents the kernel's codes alone, for answers made outside a router's
// kernel (newProblem).
var kernelProblems = func() *problemRegistry {
	r := &problemRegistry{docs: map[string]ProblemDoc{}, pages: map[string][]byte{}}
	if err := r.add(kernelDocs...); err != nil {
		panic(err) // the kernel's own table is broken: problems_test.go catches it first
	}
	return r
}()

func newProblemRegistry() *problemRegistry {
	r := &problemRegistry{docs: map[string]ProblemDoc{}, pages: map[string][]byte{}}
	_ = r.add(kernelDocs...)
	return r
}

// add documents codes; a code documented twice, or documented without a title, status or
// explanation, is an error (a module's mistake, caught when the router is built).
func (r *problemRegistry) add(docs ...ProblemDoc) error {
	for _, d := range docs {
		if _, dup := r.docs[d.Code]; dup {
			return fmt.Errorf("httpapi: problem code %q documented twice", d.Code)
		}
		if d.Code == "" || d.Title == "" || d.Status < 400 || d.Meaning == "" || d.Action == "" {
			return fmt.Errorf("httpapi: problem code %q needs a title, a status, a meaning and an action", d.Code)
		}
		var buf bytes.Buffer
		err := problemPageTemplate.Execute(&buf, map[string]any{
			"Code": d.Code, "Title": d.Title, "Type": ProblemTypePrefix + d.Code,
			"Status": d.Status, "StatusText": http.StatusText(d.Status),
			"Meaning": d.Meaning, "Action": d.Action,
		})
		if err != nil {
			return fmt.Errorf("httpapi: problem page %s: %w", d.Code, err)
		}
		r.docs[d.Code] = d
		r.pages[d.Code] = buf.Bytes()
	}
	return nil
}

// title is a code's title; an undocumented code gets its code spelt as words.
func (r *problemRegistry) title(code string) string {
	if d, ok := r.docs[code]; ok {
		return d.Title
	}
	t := strings.ReplaceAll(code, "_", " ")
	if t == "" {
		return "Problem"
	}
	return strings.ToUpper(t[:1]) + t[1:]
}

// Codes lists every documented code, sorted.
func (r *problemRegistry) codes() []string {
	return slices.Sorted(maps.Keys(r.docs))
}

// problemPageTemplate renders one code's page. html/template escapes every value; the page
// loads nothing (no style sheet, script or image), so the API's Content-Security-Policy
// (default-src 'none') suits it.
var problemPageTemplate = template.Must(template.New("problem").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Code}}: {{.Title}}</title>
</head>
<body>
<h1>{{.Title}}</h1>
<p>Problem code <code>{{.Code}}</code>, answered with HTTP status {{.Status}} ({{.StatusText}}).</p>
<h2>What it means</h2>
<p>{{.Meaning}}</p>
<h2>What to do</h2>
<p>{{.Action}}</p>
<p>Problem documents with this code have <code>"type": "{{.Type}}"</code> and <code>"code": "{{.Code}}"</code>; clients switch on <code>code</code>. The API is described at <a href="/docs">/docs</a>.</p>
</body>
</html>
`))

// problemTypePage serves GET /problems/{code}: the page a problem document's type leads to.
// An unknown code is a 404 problem like any unknown path.
func (s *server) problemTypePage(c *gin.Context) {
	page, ok := s.problems.pages[c.Param("code")]
	if !ok {
		writeProblem(c, newProblem(http.StatusNotFound, CodeNotFound, "There is no problem type with this code."))
		return
	}
	// The pages change only with the binary; an hour of caching spares a browser refetching
	// one while its reader looks up several codes.
	c.Header("Cache-Control", "public, max-age=3600")
	c.Header("Content-Length", strconv.Itoa(len(page)))
	c.Data(http.StatusOK, "text/html; charset=utf-8", page)
}

// DocumentedProblems returns the documentation of every problem code a router built with
// modules can answer (the kernel's and the modules'), sorted by code: what the OpenAPI
// document's Problem.code enum must list, and what GET /problems/{code} serves.
func DocumentedProblems(modules ...Module) ([]ProblemDoc, error) {
	var routes Routes
	for _, m := range modules {
		m.Register(&routes)
	}
	r := newProblemRegistry()
	if err := r.add(routes.problems...); err != nil {
		return nil, err
	}
	out := make([]ProblemDoc, 0, len(r.docs))
	for _, code := range r.codes() {
		out = append(out, r.docs[code])
	}
	return out, nil
}
