package httpapi

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/application/paging"
	"github.com/acme/postsvc/ports"
)

// What module handlers use of the kernel. Each finds the kernel serving the request in its
// context, so a module holds no reference to it.

// ErrNoResult flags a use case that returned neither a result nor an error: a bug, answered 500.
var ErrNoResult = errors.New("httpapi: use case returned no result")

// SmallBodyLimit suits bodies of a few short fields (credentials, a profile, an admin's edit):
// a password of at most 1024 bytes, with ample room for escaping.
const SmallBodyLimit int64 = 64 << 10

// Decode reads the request body (at most the route's BodyLimit, as one JSON object) into dst,
// a non-nil pointer. On failure it has already answered (400, 408, 413, 415 or 503) and
// returns false. Field names match exactly, unknown fields are ignored, and text must be
// valid Unicode.
func Decode(c *gin.Context, dst any) bool {
	rs := settingsOf(c)
	return kernelOf(c).decodeJSON(c, bodyOptions{limit: rs.bodyLimit, compressed: rs.compressed, stringLimits: rs.stringLimits}, dst)
}

// DecodeOptional is Decode for a body the client may leave out: an absent or empty body
// leaves dst untouched.
func DecodeOptional(c *gin.Context, dst any) bool {
	rs := settingsOf(c)
	return kernelOf(c).decodeJSON(c, bodyOptions{limit: rs.bodyLimit, compressed: rs.compressed, stringLimits: rs.stringLimits, optional: true}, dst)
}

// Fail answers err: an error that describes itself (domain.Error) by its kind, code and
// message; anything else as a 500 whose text is logged, never sent.
func Fail(c *gin.Context, err error) { kernelOf(c).fail(c, err) }

// WriteJSON answers v as JSON with status.
func WriteJSON(c *gin.Context, status int, v any) { kernelOf(c).writeJSON(c, status, v) }

// Malformed answers 400 malformed_request with detail, which must not echo client input.
func Malformed(c *gin.Context, detail string) { malformed(c, detail) }

// PageQuery reads a list endpoint's query string: limit and cursor, and the other parameters
// names (their values in extra, "" when absent). On a query string that cannot be decoded, a
// repeated parameter or a limit that is not 1 to paging.MaxLimit in decimal digits it has
// already answered (400 or 422) and returns false. The cursor is the use case's to check.
func PageQuery(c *gin.Context, names ...string) (page ports.PageRequest, extra map[string]string, ok bool) {
	query, ok := queryParams(c, append([]string{"limit", "cursor"}, names...)...)
	if !ok {
		return ports.PageRequest{}, nil, false
	}
	limit, err := parseLimit(query["limit"])
	if err != nil {
		Fail(c, err)
		return ports.PageRequest{}, nil, false
	}
	return ports.PageRequest{Limit: limit, Cursor: query["cursor"]}, query, true
}

// parseLimit reads the optional "limit" query parameter. Absent (or empty) is 0, which use
// cases read as "the default"; since 0 means that, an explicit 0 is refused. Only ASCII
// decimal digits are read: strconv.Atoi also takes a sign ("+5", "-1"), and a parser of
// Unicode digits would take "٥"; a limit is a count, written one way. Every invalid limit,
// 0 and anything over paging.MaxLimit included, gets paging.InvalidLimit: one message that
// names the range, the one the use cases give.
func parseLimit(raw string) (int, error) {
	if raw == "" {
		return 0, nil
	}
	n := 0
	for i := range len(raw) {
		c := raw[i]
		if c < '0' || c > '9' {
			return 0, paging.InvalidLimit()
		}
		n = n*10 + int(c-'0')
		if n > paging.MaxLimit { // also bounds n, however many digits follow
			return 0, paging.InvalidLimit()
		}
	}
	if n == 0 {
		return 0, paging.InvalidLimit()
	}
	return n, nil
}

// PreconditionFailed answers 412 (RFC 9110 section 13.1.1: an If-Match or If-Unmodified-Since
// the content does not meet) as a problem document like every other error.
func PreconditionFailed(c *gin.Context) {
	writeProblem(c, newProblem(http.StatusPreconditionFailed, CodePreconditionFailed,
		"The If-Match or If-Unmodified-Since header does not match the content's current version (its ETag and Last-Modified)."))
}

// RangeNotSatisfiable answers 416 for content of size bytes, with Content-Range: bytes */size
// (RFC 9110 section 15.5.17), as a problem document like every other error.
func RangeNotSatisfiable(c *gin.Context, size int64) {
	c.Header("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
	writeProblem(c, newProblem(http.StatusRequestedRangeNotSatisfiable, CodeRangeNotSatisfiable,
		"The Range header selects none of the content's "+strconv.FormatInt(size, 10)+" bytes."))
}
