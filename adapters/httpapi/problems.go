package httpapi

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
)

// problemPage is what GET /problems/{code} says about a code beyond its title (titles in
// problem.go): the status it comes with, what it means, and what a client should do. Every
// problem document's "type" leads to this page, so a person who meets a code can look it up.
type problemPage struct {
	Status  int
	Meaning string
	Action  string
}

// problemPages holds the page of every code. A new code gets its page by adding one entry
// here beside its title; problems_test.go fails for a code with a title and no page, or the
// other way round.
var problemPages = map[string]problemPage{
	CodeValidationFailed: {http.StatusUnprocessableEntity,
		"The request was well-formed, but one or more values are not acceptable: an email that is not an address, a password that is too short, a limit out of range, a cursor the service did not issue.",
		"Read errors in the problem document: each entry names a field and says what is wrong with it. Correct those values and send the request again; sending it unchanged fails the same way."},
	CodeMalformedRequest: {http.StatusBadRequest,
		"The request could not be read: the body is not a single JSON object, a field has the wrong JSON type, text is not valid Unicode, or the query string cannot be decoded.",
		"Fix how the client encodes the request; sending it unchanged fails the same way."},
	CodePayloadTooLarge: {http.StatusRequestEntityTooLarge,
		"The request body is larger than the endpoint accepts (a post's text is at most 1 MiB). It was refused without being read to the end, and the connection was closed.",
		"Send a smaller body."},
	CodeUnsupportedMediaType: {http.StatusUnsupportedMediaType,
		"The request body was not sent as JSON.",
		"Send the body as JSON with the header Content-Type: application/json."},
	CodeEmailTaken: {http.StatusConflict,
		"An account with this email address already exists. Addresses are compared without regard to case.",
		"Log in with that address, or use another one."},
	CodeInvalidCredentials: {http.StatusUnauthorized,
		"The email address or the password is wrong. The answer is the same for both, so it does not reveal which accounts exist.",
		"Ask for the credentials again. Repeated failures for one account or from one address are throttled (too_many_attempts)."},
	CodeInvalidRefreshToken: {http.StatusUnauthorized,
		"The refresh token is unknown, expired, or already used. Using a refresh token a second time revokes its whole session.",
		"Log in again to open a new session. After each refresh, keep only the newest refresh token."},
	CodeUnauthenticated: {http.StatusUnauthorized,
		"The request needs a valid access token, and it had none, or its token is malformed, expired, altered, or belongs to a session that has ended.",
		"Refresh the session and retry with the new access token; if refreshing fails, log in again."},
	CodeForbidden: {http.StatusForbidden,
		"The caller is authenticated, but its role does not allow this operation: administrators hold no content, and only administrators manage accounts.",
		"Do not retry with the same credentials; use an account with the role the operation needs."},
	CodePostNotFound: {http.StatusNotFound,
		"The caller has no post with this id. Another user's post is answered the same way as a missing one.",
		"Check the id; the post may have been deleted."},
	CodeUserNotFound: {http.StatusNotFound,
		"There is no account with this id.",
		"Check the id; the account may have been deleted."},
	CodeNotFound: {http.StatusNotFound,
		"There is nothing at this path.",
		"Check the path against the API documentation at /docs."},
	CodeMethodNotAllowed: {http.StatusMethodNotAllowed,
		"The path exists but does not support this method. The Allow header lists the methods it does support.",
		"Use one of the methods in the Allow header."},
	CodeLastAdmin: {http.StatusConflict,
		"The change would leave the service without an administrator: the last admin can be neither demoted nor deleted.",
		"Make another account an admin first, then retry."},
	CodeTooManyAttempts: {http.StatusTooManyRequests,
		"Too many attempts for this account or from this client address within the throttle window.",
		"Wait the number of seconds in the Retry-After header before trying again."},
	CodeUnavailable: {http.StatusServiceUnavailable,
		"A dependency of the service, usually its database, cannot be reached right now, or this instance is shutting down. It says nothing about the request itself.",
		"Retry after the number of seconds in the Retry-After header, backing off if it happens again."},
	CodeOverloaded: {http.StatusServiceUnavailable,
		"The service is busy (more password checks are waiting than it can run soon) and shed this request at once, without working on it.",
		"Retry after the number of seconds in the Retry-After header."},
	CodeRequestTimeout: {http.StatusRequestTimeout,
		"The request body did not arrive completely within the server's read timeout, so the request was abandoned and the connection closed.",
		"Retry, over a faster connection or with a smaller body."},
	CodeInternalError: {http.StatusInternalServerError,
		"Something unexpected failed inside the service. The cause is logged with the request's id and never sent to clients.",
		"Retry later. If it keeps happening, report the X-Request-ID header of the response."},
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

// renderedProblemPages are the pages, rendered once when the package is loaded. An error (a
// code with a page but no title) is kept and answered as a 500, as the OpenAPI document's is;
// the package's tests catch it first.
var renderedProblemPages, problemPagesErr = renderProblemPages()

func renderProblemPages() (map[string][]byte, error) {
	out := make(map[string][]byte, len(problemPages))
	for code, page := range problemPages {
		title, ok := titles[code]
		if !ok {
			return nil, fmt.Errorf("httpapi: problem code %q has a page but no title", code)
		}
		var buf bytes.Buffer
		err := problemPageTemplate.Execute(&buf, map[string]any{
			"Code": code, "Title": title, "Type": ProblemTypePrefix + code,
			"Status": page.Status, "StatusText": http.StatusText(page.Status),
			"Meaning": page.Meaning, "Action": page.Action,
		})
		if err != nil {
			return nil, fmt.Errorf("httpapi: problem page %s: %w", code, err)
		}
		out[code] = buf.Bytes()
	}
	return out, nil
}

// problemTypePage serves GET /problems/{code}: the page a problem document's type leads to.
// An unknown code is a 404 problem like any unknown path.
func (s *server) problemTypePage(c *gin.Context) {
	if problemPagesErr != nil {
		s.fail(c, problemPagesErr)
		return
	}
	page, ok := renderedProblemPages[c.Param("code")]
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
