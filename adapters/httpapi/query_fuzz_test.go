package httpapi_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/application/paging"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/ports"
)

// FuzzQuery fuzzes a list endpoint's query string (PageQuery: limit, cursor and one more
// parameter, q, then the paging rules the use cases apply). Properties:
//
//   - it never panics, and answers with a page, 400 malformed_request or 422 naming limit or
//     cursor: nothing else;
//   - a query string that cannot be decoded (a '%' not followed by two hexadecimal digits, a
//     ';', more than 10,000 parameters) is 400, whichever parameter holds it, read or not;
//   - otherwise, against a percent-decoder written here: a read parameter given twice or not
//     decoding to UTF-8 is 400; limit is absent or empty (the default) or 1 to 100 written in
//     ASCII decimal digits alone (no sign, space or other digits), else 422 with the one
//     message of an invalid limit; the page holds exactly the decoded values;
//   - a page's parameters, encoded again, give the same page (the query string's spelling does
//     not matter);
//   - the paging rules then give 1 to 100 items and a cursor this service issued, or 422.
func FuzzQuery(f *testing.F) {
	cursor := paging.Encode("0190a1b2-0000-7000-8000-000000000001")
	for _, seed := range []string{
		"", "limit=5", "limit=100&cursor=" + cursor, "cursor=" + cursor + "&q=caf%C3%A9+100%25",
		"limit=%35&cursor=a%2Bb&utm=1&utm=2", "cursor=%%%", "limit=%zz", "cursor=abc%2", "%zz=1",
		"limit=5&other=%zz", "limit=5;cursor=x", "limit=5&limit=6", "cursor=a&cursor=b", "limit=&limit=5",
		"cursor=%ff", "limit=5%c3", "q=a&q=b", "q=%ff", "limit=0", "limit=-1", "limit=+5", "limit=%2B5", "limit=007",
		"limit=101", "limit=99999999999999999999", "limit= 5", "limit=5.0", "limit=1e2", "limit=%EF%BC%95", "limit=%D9%A5", "limit=100", "limit=0100",
		"limit", "=5", "&&&limit=5&&", "limit=5=6", "LIMIT=5", "cursor=" + cursor + "%3D", "cursor=zzzz",
		"q=" + strings.Repeat("a", 300), "q=%00", "q=%E2%80%8B", strings.Repeat("&", 10000),
	} {
		f.Add(seed)
	}
	gin.SetMode(gin.ReleaseMode)
	f.Fuzz(func(t *testing.T, rawQuery string) {
		got := runPageQuery(t, rawQuery)
		want := referenceQuery(rawQuery)
		if got.status != want.status || got.field != want.field {
			t.Fatalf("%q: %s, want %d %s (%s)", rawQuery, got, want.status, want.field, want.why)
		}
		if got.status == 400 && !strings.Contains(got.detail, "query") {
			t.Fatalf("%q: a 400 whose detail is not about the query: %s", rawQuery, got)
		}
		if got.field == "limit" && got.message != limitMessage {
			t.Fatalf("%q: the limit refused with %q, want the one message %q", rawQuery, got.message, limitMessage)
		}
		if got.status != 200 {
			return
		}
		if got.page != want.page || got.q != want.q {
			t.Fatalf("%q: page %+v q %q, want %+v q %q", rawQuery, got.page, got.q, want.page, want.q)
		}
		// The same parameters, spelled canonically, give the same page.
		v := url.Values{}
		if got.page.Limit != 0 {
			v.Set("limit", strconv.Itoa(got.page.Limit))
		}
		if got.page.Cursor != "" {
			v.Set("cursor", got.page.Cursor)
		}
		if got.q != "" {
			v.Set("q", got.q)
		}
		if again := runPageQuery(t, v.Encode()); again.status != 200 || again.page != got.page || again.q != got.q {
			t.Fatalf("%q: re-encoded as %q: %s", rawQuery, v.Encode(), again)
		}
		// The use case's paging rules.
		limit, err := paging.Limit(got.page.Limit)
		if err == nil && (limit < 1 || limit > paging.MaxLimit) || err != nil && !isInvalid(err, "limit") {
			t.Fatalf("%q: paging.Limit(%d) = %d, %v", rawQuery, got.page.Limit, limit, err)
		}
		id, err := paging.Decode(got.page.Cursor)
		if err == nil && got.page.Cursor != "" && !paging.ValidID(id) || err != nil && !isInvalid(err, "cursor") {
			t.Fatalf("%q: paging.Decode(%q) = %q, %v", rawQuery, got.page.Cursor, id, err)
		}
	})
}

// fuzzEngine is the engine of the fuzz targets' contexts, made once.
var fuzzEngine = func() *gin.Engine {
	gin.SetMode(gin.ReleaseMode) // before gin.New, which warns in debug mode
	return gin.New()
}()

// queryResult is PageQuery's answer.
type queryResult struct {
	status  int // 200 for a page
	field   string
	message string // the field's message
	detail  string
	page    ports.PageRequest
	q       string
}

// limitMessage is the message of every invalid limit.
const limitMessage = "must be an integer from 1 to 100, written in the digits 0-9"

func (r queryResult) String() string {
	if r.status == 200 {
		return "page " + strconv.Itoa(r.page.Limit) + " " + strconv.Quote(r.page.Cursor) + " q=" + strconv.Quote(r.q)
	}
	return strconv.Itoa(r.status) + " " + r.field + ": " + r.detail
}

func runPageQuery(t *testing.T, rawQuery string) queryResult {
	t.Helper()
	rec := httptest.NewRecorder()
	c := gin.CreateTestContextOnly(rec, fuzzEngine)
	c.Request = &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/api/v1/things", RawQuery: rawQuery}, Header: http.Header{}}
	page, extra, ok := httpapi.PageQuery(c, "q")
	if ok {
		if rec.Body.Len() != 0 {
			t.Fatalf("%q: a page, and an answer %q", rawQuery, rec.Body.String())
		}
		return queryResult{status: 200, page: page, q: extra["q"]}
	}
	var p struct {
		Status int    `json:"status"`
		Code   string `json:"code"`
		Detail string `json:"detail"`
		Errors []struct {
			Field   string `json:"field"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != rec.Code {
		t.Fatalf("%q: %d with %q: %v", rawQuery, rec.Code, rec.Body.String(), err)
	}
	out := queryResult{status: rec.Code, detail: p.Detail}
	switch {
	case rec.Code == 400 && p.Code == "malformed_request" && len(p.Errors) == 0:
	case rec.Code == 422 && p.Code == "validation_failed" && len(p.Errors) == 1:
		out.field, out.message = p.Errors[0].Field, p.Errors[0].Message
	default:
		t.Fatalf("%q: answered %d %s: %s", rawQuery, rec.Code, p.Code, rec.Body.String())
	}
	return out
}

// referenceQueryResult is what the contract makes of a query string.
type referenceQueryResult struct {
	status int
	field  string
	why    string
	page   ports.PageRequest
	q      string
}

var decimalDigits = regexp.MustCompile(`^[0-9]+$`)

// referenceQuery decodes a query string by hand: parameters separated by '&' (empty ones
// skipped), name and value split at the first '=', '+' for a space and %XX for a byte.
func referenceQuery(raw string) referenceQueryResult {
	refuse := func(status int, field, why string) referenceQueryResult {
		return referenceQueryResult{status: status, field: field, why: why}
	}
	if strings.Count(raw, "&")+1 > 10000 {
		return refuse(400, "", "more than 10,000 parameters")
	}
	values := map[string][]string{}
	undecodable := false
	for param := range strings.SplitSeq(raw, "&") {
		if strings.Contains(param, ";") {
			undecodable = true
		}
		if param == "" {
			continue
		}
		name, value, _ := strings.Cut(param, "=")
		n, ok1 := percentDecode(name)
		v, ok2 := percentDecode(value)
		if !ok1 || !ok2 {
			undecodable = true
			continue
		}
		values[n] = append(values[n], v)
	}
	if undecodable {
		return refuse(400, "", "undecodable")
	}
	for _, name := range []string{"limit", "cursor", "q"} {
		switch vs := values[name]; {
		case len(vs) > 1:
			return refuse(400, "", name+" given twice")
		case len(vs) == 1 && !utf8.ValidString(vs[0]):
			return refuse(400, "", name+" not UTF-8")
		}
	}
	out := referenceQueryResult{status: 200, page: ports.PageRequest{Cursor: first(values["cursor"])}, q: first(values["q"])}
	if limit := first(values["limit"]); limit != "" {
		n, err := strconv.ParseInt(limit, 10, strconv.IntSize)
		if !decimalDigits.MatchString(limit) || err != nil || n < 1 || n > paging.MaxLimit {
			return refuse(422, "limit", "limit "+strconv.Quote(limit))
		}
		out.page.Limit = int(n)
	}
	return out
}

func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// percentDecode decodes one name or value of a query string.
func percentDecode(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '+':
			b.WriteByte(' ')
		case '%':
			if i+2 >= len(s) {
				return "", false
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return "", false
			}
			b.WriteByte(hi<<4 | lo)
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// isInvalid reports whether err is a validation error of field alone.
func isInvalid(err error, field string) bool {
	var v *domain.ValidationError
	return errors.As(err, &v) && len(v.Fields) == 1 && v.Fields[0].Field == field
}
