package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/textproto"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"golang.org/x/sync/semaphore"

	"github.com/acme/postsvc/domain"
)

// DefaultBodyMemory is the budget of request bodies being decoded at once when none is
// configured: room for five of the largest post bodies, or dozens of ordinary ones.
const DefaultBodyMemory int64 = 64 << 20

// errInvalidUTF8 is returned by utf8Reader, so that a body with invalid bytes is refused with
// a detail that says so, wherever the bytes are.
var errInvalidUTF8 = errors.New("request body is not valid UTF-8")

// decodeOptions are the JSON rules of every request body. They are json v2's defaults, spelled
// out so that a change of defaults cannot loosen them unnoticed:
//   - member names match struct fields exactly: "EMAIL" is an unknown member, not "email"
//     (encoding/json matched case-insensitively, so {"email":"a","EMAIL":"b"} meant b);
//   - unknown members are ignored, so clients may send fields a later version understands;
//   - strings must be valid Unicode: invalid UTF-8 and lone surrogate escapes ("\ud800")
//     are errors (encoding/json replaced both with U+FFFD silently);
//   - a member named twice is an error, being as ambiguous as a case variant;
//   - null is a value of the wrong type for a field that is a string, a number or a boolean
//     in Go (json v2 would leave the field at its zero value, so {"text": null} read as a
//     missing text, 422, where the contract calls a wrong JSON type 400), and for an optional
//     number (*Int), which is left out to be absent. Fields that may be null are other
//     pointers or json.RawMessage, which these unmarshalers do not see.
var decodeOptions = jsonv2.JoinOptions(
	jsonv2.MatchCaseInsensitiveNames(false),
	jsonv2.RejectUnknownMembers(false),
	jsontext.AllowInvalidUTF8(false),
	jsontext.AllowDuplicateNames(false),
	jsonv2.WithUnmarshalers(jsonv2.JoinUnmarshalers(
		refuseNull[string](), refuseNull[bool](), refuseNull[int](), refuseNull[int64](), refuseNull[float64](),
		// An optional number (*Int) is left out to be absent; null is the wrong type, as for
		// every number (API keys' expires_in_days).
		refuseNull[*Int](),
	)),
)

// errNullValue is what refuseNull returns; json v2 wraps it in a SemanticError naming the
// field and its Go type, which bodyReadError turns into "Field "x" must be a string".
var errNullValue = errors.New("null is not a value of this field's type")

// refuseNull is an unmarshaler of T that refuses null and leaves every other value to json
// v2's own decoding.
func refuseNull[T any]() *jsonv2.Unmarshalers {
	return jsonv2.UnmarshalFromFunc(func(dec *jsontext.Decoder, _ *T) error {
		if dec.PeekKind() == 'n' {
			return errNullValue
		}
		return errors.ErrUnsupported // json v2 decodes it as usual
	})
}

// readTimeoutAnswerGrace is how long the 408 answer to a body cut off by the read timeout may
// take to write. net/http starts the connection's write deadline (APP_HTTP_WRITE_TIMEOUT) when
// the headers have been read, almost when the read deadline started, so by the time the read
// deadline has passed the write deadline may have too; the answer is a few hundred bytes.
const readTimeoutAnswerGrace = 5 * time.Second

// bodyOptions tune decodeJSON for one endpoint.
type bodyOptions struct {
	limit int64
	// optional allows an absent or empty body (logout), which leaves dst untouched.
	optional bool
	// compressed accepts a gzip-compressed body (Content-Encoding: gzip); limit then bounds
	// the decompressed size too.
	compressed bool
	// stringLimits bound top-level string members as the body arrives (stringLimiter).
	stringLimits []StringLimit
}

// decodeJSON reads a request body of at most opts.limit bytes holding exactly one JSON object
// into dst, which must be a non-nil pointer. On failure it has already answered the request
// (400, 408, 413 or 415) and returns false.
//
// Unknown fields are ignored, so clients may send fields a later version understands. Data
// after the object is refused: a body holding two objects is a client bug. The time spent
// receiving the body does not count against the request timeout (see pauseDeadline): it is
// bounded by the read timeout instead, and a client too slow to send its body gets 408.
func (s *server) decodeJSON(c *gin.Context, opts bodyOptions, dst any) bool {
	if v := reflect.ValueOf(dst); v.Kind() != reflect.Pointer || v.IsNil() {
		// A programming error, not the client's.
		s.fail(c, fmt.Errorf("httpapi: decodeJSON into %T, want a non-nil pointer", dst))
		return false
	}
	r := c.Request
	if opts.optional && (r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody) {
		return true
	}
	contentType := r.Header.Get("Content-Type")
	isJSON := jsonMediaType(contentType)
	if !isJSON && (contentType != "" || !opts.optional) {
		unsupportedMediaType(c)
		return false
	}
	src, ok := openBody(c, opts.limit, opts.compressed)
	if !ok {
		return false
	}
	declared := r.ContentLength
	if opts.compressed && len(contentCodings(r.Header)) > 0 {
		declared = -1 // the decompressed length is unknown until read
	}
	started := time.Now()
	in := src
	var limiter *stringLimiter
	if len(opts.stringLimits) > 0 {
		limiter = newStringLimiter(in, opts.stringLimits)
		in = limiter
	}
	body, res, err := s.bodies.read(r.Context(), declared, opts.limit, &utf8Reader{r: in})
	defer res.release()
	if err != nil {
		if errors.Is(err, domain.ErrOverloaded) {
			s.fail(c, err)
		} else {
			s.bodyReadError(c, err)
		}
		return false
	}
	first, blank := firstNonSpace(body.Bytes())
	switch {
	case blank:
		if opts.optional {
			pauseDeadline(c, time.Since(started))
			return true
		}
		malformed(c, "The request body is empty; a JSON object is required.")
		return false
	case !isJSON:
		// An optional body sent without a Content-Type is only acceptable when empty.
		unsupportedMediaType(c)
		return false
	case first != '{':
		malformed(c, notAnObject(body.Bytes()))
		return false
	}
	if detail := checkShape(body.Bytes()); detail != "" {
		malformed(c, detail)
		return false
	}
	// Given a *bytes.Buffer, the decoder parses the buffer's own bytes instead of copying
	// them into a buffer of its own.
	dec := jsontext.NewDecoder(body, decodeOptions)
	if err := jsonv2.UnmarshalDecode(dec, dst); err != nil {
		s.bodyReadError(c, err)
		return false
	}
	if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
		malformed(c, "The request body must hold a single JSON object and nothing after it.")
		return false
	}
	if limiter != nil {
		// The large values (a post's text, up to 1 MiB) stay in memory until the request
		// ends, waiting for the database as often as not: they keep their share of the
		// budget till then (releaseKeptBodies). When the share went back after decoding, an
		// outside probe's 600 posts of 1 MiB at once on SQLite took the server to 986 MB
		// with a 64 MiB budget.
		res.keep(c, limiter.total)
	}
	pauseDeadline(c, time.Since(started))
	return true
}

// utf8BOM is the UTF-8 encoding of U+FEFF, the byte order mark.
var utf8BOM = []byte("\xef\xbb\xbf")

// BOMDetail is the detail of a body that starts with a UTF-8 byte order mark. Some clients
// write one (PowerShell, .NET's UTF8Encoding(true), text editors saving "UTF-8 with BOM"), RFC
// 8259 (section 8.1) forbids it in JSON sent over a network, and "must be a JSON object" alone
// would send their authors looking for a brace that is there. The ECG decoder says the same.
const BOMDetail = "The request body starts with a byte order mark (U+FEFF), which JSON sent over a network must not have (RFC 8259, section 8.1); send the JSON object without it."

// notAnObject is the detail of a body that holds something other than a JSON object.
func notAnObject(body []byte) string {
	if bytes.HasPrefix(body, utf8BOM) {
		return BOMDetail
	}
	return "The request body must be a JSON object."
}

// jsonMediaType accepts application/json, with an optional charset that must be UTF-8.
func jsonMediaType(contentType string) bool {
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil || mediaType != "application/json" {
		return false
	}
	charset, ok := params["charset"]
	return !ok || strings.EqualFold(charset, "utf-8") || strings.EqualFold(charset, "utf8")
}

func unsupportedMediaType(c *gin.Context) {
	writeProblem(c, newProblem(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType,
		"The request body must be JSON, sent with Content-Type: application/json."))
}

// bodyReadError answers a failed read or decode with a detail that names the problem without
// echoing the input beyond a character or an escape sequence.
func (s *server) bodyReadError(c *gin.Context, err error) {
	var (
		tooLarge    *http.MaxBytesError
		stringLarge *StringTooLargeError
		syntax      *jsontext.SyntacticError
		semantic    *jsonv2.SemanticError
	)
	switch {
	case errors.As(err, &tooLarge):
		s.fail(c, err)
	case errors.As(err, &stringLarge):
		s.fail(c, stringLarge.Limit.Err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The connection's read deadline (http.Server.ReadTimeout, APP_HTTP_READ_TIMEOUT)
		// passed while the body was still arriving: the client is too slow, which is neither
		// a malformed request nor an outage.
		_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Now().Add(readTimeoutAnswerGrace))
		s.fail(c, fmt.Errorf("read request body: %w: %w", domain.ErrRequestTimeout, err))
	case errors.Is(err, errMalformedGzip):
		malformed(c, "The request body says it is gzip-compressed but does not decompress.")
	case errors.Is(err, errInvalidUTF8):
		malformed(c, "The request body must be valid UTF-8.")
	case errors.As(err, new(textproto.ProtocolError)) && c.ContentType() == "multipart/form-data":
		malformed(c, "A part of the multipart body has a malformed header: each header line needs a name and a colon, "+
			"and a value may not hold a line break or many control characters (a file name with them can be sent percent-encoded, as filename*=UTF-8''...).")
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		if c.ContentType() == "multipart/form-data" {
			malformed(c, "The multipart body ends before its closing boundary: a part, or the final boundary, is cut off.")
		} else {
			malformed(c, "The request body ends before its JSON object is complete.")
		}
	case errors.As(err, &syntax) && errors.Is(syntax.Err, jsontext.ErrDuplicateName):
		malformed(c, "The request body names a field more than once.")
	case errors.As(err, &syntax) && isSurrogateError(syntax.Err):
		malformed(c, fmt.Sprintf("The request body holds text that is not valid Unicode (at byte %d): "+
			`a \uXXXX escape of a surrogate (\ud800 to \udfff) must be one half of a pair.`, syntax.ByteOffset))
	case errors.As(err, &syntax):
		malformed(c, fmt.Sprintf("The request body is not valid JSON (at byte %d): %s.", syntax.ByteOffset, syntax.Err))
	case errors.As(err, &semantic):
		// Only members that name a field of dst are decoded (unknown ones are skipped), so
		// the first token of the pointer is one of the service's own field names.
		field, _, _ := strings.Cut(strings.TrimPrefix(string(semantic.JSONPointer), "/"), "/")
		if field == "" {
			malformed(c, "The request body must be a JSON object.")
			return
		}
		not := ""
		if errors.Is(err, errNullValue) {
			not = ", not null"
		}
		malformed(c, fmt.Sprintf("Field %q must be %s%s.", field, jsonKind(semantic.GoType), not))
	default:
		malformed(c, "The request body could not be read.")
	}
}

// isSurrogateError reports whether a syntax error is json v2's refusal of an escaped
// surrogate that is not half of a valid pair ("\ud800", "\udc00\ud800"). The library has
// no error value for it, only this wording; should the wording change, the request is still
// refused as invalid JSON, and decode_test.go notices that the detail changed.
func isSurrogateError(err error) bool {
	return err != nil && strings.Contains(err.Error(), "surrogate")
}

// jsonKind names the JSON type a Go destination expects, for error details.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "of another type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeFor[Int]() {
		return "a number"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "of another type"
}

// The shape of a request body, bounded before it is decoded (checkShape). The service's bodies
// are a handful of short members (the largest, a bulk delete, is 100 ids), but json v2 keeps
// every member name of every open object to refuse duplicates (in a map past 64 names), folds
// unknown names to look them up, and makes a slice of every array it decodes: a body of short
// names took about 20 times its size (a 6 MiB post of unknown members allocated 109 MB), one of
// long names 12 times, one of 3-byte array elements 27 times, and one nested 9,000 deep 2.7 MB
// for 54 KB, against the 2.5 times the body that bodyReservation sets aside. Within these
// bounds a body takes at most about 2.5 times its size plus under a megabyte. The ECG upload
// decoder, which reads its own format, has its own (64 deep, 1,024 members per object).
const (
	// maxBodyDepth bounds the nesting of arrays and objects, the body's object counting as 1.
	maxBodyDepth = 64
	// maxBodyValues bounds the members and array elements of the body, at any depth.
	maxBodyValues = 1024
	// maxNameBytes bounds a member name, in bytes as sent.
	maxNameBytes = 64
)

// checkShape returns the detail of the 400 for a body past the shape bounds, "" otherwise. It
// reads the structure outside strings and does not validate the JSON, which the decoder does
// next: on a body that is not JSON it may refuse for the shape, or let the decoder refuse it.
func checkShape(b []byte) string {
	var (
		depth, values int
		isArray       [maxBodyDepth + 1]bool // the kind of each open level
		firstElement  bool                   // an array has just opened
	)
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		if firstElement {
			firstElement = false
			if c != ']' {
				values++
			}
		}
		switch c {
		case '"':
			end := stringEnd(b, i)
			if end-i-1 > maxNameBytes && nextNonSpace(b, end+1) == ':' {
				return fmt.Sprintf("The request body has a member name longer than %d bytes; this API has none.", maxNameBytes)
			}
			i = end
		case '{', '[':
			if depth++; depth > maxBodyDepth {
				return fmt.Sprintf("The request body nests arrays and objects more than %d deep.", maxBodyDepth)
			}
			isArray[depth] = c == '['
			firstElement = c == '['
		case '}', ']':
			depth = max(depth-1, 0)
		case ':':
			values++
		case ',':
			if isArray[depth] {
				values++
			}
		}
		if values > maxBodyValues {
			return fmt.Sprintf("The request body holds more than %d members and array elements; this API takes no such body.", maxBodyValues)
		}
	}
	return ""
}

// stringEnd returns the index of the quote that ends the string starting at b[start], or
// len(b) when it does not end.
func stringEnd(b []byte, start int) int {
	for i := start + 1; ; i++ {
		k := bytes.IndexByte(b[i:], '"')
		if k < 0 {
			return len(b)
		}
		i += k
		// The quote is escaped when an odd number of backslashes precede it.
		n := 0
		for j := i - 1; j > start && b[j] == '\\'; j-- {
			n++
		}
		if n%2 == 0 {
			return i
		}
	}
}

// nextNonSpace returns the first byte from b[i] on that is not JSON whitespace, 0 when none.
func nextNonSpace(b []byte, i int) byte {
	if i >= len(b) {
		return 0
	}
	c, _ := firstNonSpace(b[i:])
	return c
}

// firstNonSpace returns the first byte of b after JSON whitespace; blank is true when there is
// none. (A NUL byte is not blank: "\x00" once read as an empty body, accepted where the body is
// optional.)
func firstNonSpace(b []byte) (first byte, blank bool) {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c, false
	}
	return 0, true
}

// bodyReservation is the memory a body of n bytes takes while it is decoded: the body
// itself, the decoder's unescaping buffer (as long as the escaped text at worst) and the text
// it decodes to (never longer). BenchmarkDecodePost measures 2.0 times the body for plain
// text and 2.2 times for a post escaped six-fold; 2.5 covers both.
func bodyReservation(n int64) int64 { return n*5/2 + bytes.MinRead }

// firstBodyChunk is how much of a body is reserved for before any of it has arrived: a
// connection that announces a body and sends nothing holds no more than this.
const firstBodyChunk = 4 << 10

// byteBudget bounds the memory that request bodies being decoded take at once, whatever the
// number of requests. Without it, 64 clients each uploading a post escaped to 6 MiB of JSON
// took over a gigabyte. A body reserves its share as it arrives (see read), so a client that
// announces a large body and sends it slowly, or not at all, holds only what it has sent; a
// request whose context ends while it waits for memory (its deadline, or the client going
// away) is shed as overloaded.
type byteBudget struct {
	sem *semaphore.Weighted
	max int64
}

func newByteBudget(maxBytes int64) *byteBudget {
	return &byteBudget{sem: semaphore.NewWeighted(maxBytes), max: maxBytes}
}

// read reads the body src (declared bytes, or -1 when unknown; at most limit) into a buffer
// while holding a reservation for it: the first firstBodyChunk before anything has arrived,
// then twice what has arrived each time the buffer is full, never more than the declared
// length needs (nor the whole budget, so that a body the size of the budget still passes
// alone). When the budget cannot cover the next step at once, the request gives back what it
// holds and waits for the whole of it: requests that hold part of what they need never wait
// for one another. The reservation's release gives it back; it must be called once the buffer is
// no longer used, error or not. A nil budget bounds nothing (tests of single functions).
//
// The body is read whole before it is decoded, which proves it has arrived before the use
// case runs, and the decoder then parses the buffer's own bytes. Doubling allocates at most
// three times the body in all (one of them live at the end); reading into a buffer of the
// declared length at once, as before, allocated exactly the body, but reserved memory for
// bytes a client may never send.
func (b *byteBudget) read(ctx context.Context, declared, limit int64, src io.Reader) (*bytes.Buffer, *reservation, error) {
	res := &reservation{b: b}
	held := &res.held
	ceiling := limit
	if declared >= 0 && declared < limit {
		ceiling = declared
	}
	var data []byte
	for capacity := min(int64(firstBodyChunk), ceiling); ; capacity = min(max(2*capacity, 64<<10), ceiling) {
		if err := b.hold(ctx, held, bodyReservation(capacity)); err != nil {
			return bytes.NewBuffer(data), res, err
		}
		// MinRead more than the capacity: the end of the body shows as EOF, or a body
		// longer than it may be as an error from src.
		end := int(capacity) + bytes.MinRead
		if len(data) >= end {
			return bytes.NewBuffer(data), res, &http.MaxBytesError{Limit: limit}
		}
		data = slices.Grow(data, end-len(data))
		for len(data) < end {
			n, err := src.Read(data[len(data):end])
			data = data[:len(data)+n]
			if errors.Is(err, io.EOF) {
				return bytes.NewBuffer(data), res, nil
			}
			if err != nil {
				return bytes.NewBuffer(data), res, err
			}
		}
	}
}

// reservation is what one request holds of the body budget.
type reservation struct {
	b    *byteBudget
	held int64
}

// release gives back what the request holds; it may be called more than once.
func (r *reservation) release() {
	if r.b != nil && r.held > 0 {
		r.b.sem.Release(r.held)
		r.held = 0
	}
}

// keep gives back all but n bytes of the reservation at once and the n bytes once the
// request has been answered (releaseKeptBodies). n is at most what is held: a decoded value
// is never longer than its JSON, for which 2.5 times was held.
func (r *reservation) keep(c *gin.Context, n int64) {
	n = min(n, r.held)
	if r.b == nil || n <= 0 {
		return
	}
	r.b.sem.Release(r.held - n)
	r.held = 0
	b := r.b
	previous, _ := c.Get(keptBodiesKey{})
	c.Set(keptBodiesKey{}, func() {
		if f, ok := previous.(func()); ok {
			f()
		}
		b.sem.Release(n)
	})
}

type keptBodiesKey struct{}

// releaseKeptBodies gives back, once the request has been answered (or has panicked), the
// budget its decoded bodies kept (reservation.keep).
func releaseKeptBodies(c *gin.Context) {
	defer func() {
		if f, ok := c.Get(keptBodiesKey{}); ok {
			if release, ok := f.(func()); ok {
				release()
			}
		}
	}()
	c.Next()
}

// hold makes *held, the bytes a request holds, at least need (at most the whole budget).
func (b *byteBudget) hold(ctx context.Context, held *int64, need int64) error {
	if b == nil {
		return nil
	}
	need = min(need, b.max)
	if need <= *held {
		return nil
	}
	if b.sem.TryAcquire(need - *held) {
		*held = need
		return nil
	}
	b.sem.Release(*held)
	*held = 0
	if err := b.sem.Acquire(ctx, need); err != nil {
		return fmt.Errorf("%w: waiting for memory to read the request body: %w", domain.ErrOverloaded, err)
	}
	*held = need
	return nil
}

// OptionalString decodes a field that, when present, must be a JSON string (null included in
// "not a string"). It returns nil when the field was absent. raw has already been checked by
// decodeJSON (valid Unicode, no lone surrogates).
func OptionalString(field string, raw json.RawMessage) (*string, string) {
	if raw == nil {
		return nil, ""
	}
	var s string
	if string(raw) == "null" || jsonv2.Unmarshal(raw, &s) != nil {
		return nil, fmt.Sprintf("Field %q must be a string.", field)
	}
	return &s, ""
}

// utf8Reader passes bytes through while checking that they form valid UTF-8 across read
// boundaries. On invalid input it returns errInvalidUTF8 and none of the chunk's bytes.
type utf8Reader struct {
	r       io.Reader
	partial [utf8.UTFMax]byte // the start of a rune split by the previous read
	n       int
	failed  bool
}

func (u *utf8Reader) Read(p []byte) (int, error) {
	if u.failed {
		return 0, errInvalidUTF8
	}
	n, err := u.r.Read(p)
	if !u.valid(p[:n]) || (errors.Is(err, io.EOF) && u.n > 0) {
		u.failed = true
		return 0, errInvalidUTF8
	}
	return n, err
}

// valid checks b as the continuation of the stream, keeping a trailing incomplete rune for
// the next call.
func (u *utf8Reader) valid(b []byte) bool {
	// First complete the rune the previous chunk ended in.
	for u.n > 0 && len(b) > 0 {
		u.partial[u.n] = b[0]
		u.n++
		b = b[1:]
		if utf8.FullRune(u.partial[:u.n]) {
			r, size := utf8.DecodeRune(u.partial[:u.n])
			if r == utf8.RuneError && size <= 1 {
				return false
			}
			u.n = 0
		}
	}
	if u.n > 0 {
		return true // b ended inside the carried rune
	}
	// Hold back a rune cut off at the end of b.
	cut := len(b)
	for i := len(b) - 1; i >= 0 && i >= len(b)-(utf8.UTFMax-1); i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				cut = i
			}
			break
		}
	}
	if !utf8.Valid(b[:cut]) {
		return false
	}
	u.n = copy(u.partial[:], b[cut:])
	return true
}
