package httpapi

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// FuzzDecodeJSON fuzzes the kernel's JSON request decoder (decodeJSON, with openBody's limit
// and gzip handling) on arbitrary bodies, limits and ways of sending them. Properties:
//
//   - it never panics, and answers with a value, 400 malformed_request or 413
//     payload_too_large: nothing else (422 is the use cases' business, never the decoder's),
//     with a short detail that cannot echo the body;
//   - differential against encoding/json, which here decodes each member whose name is exactly
//     a field's (referenceDecode): a body that is valid UTF-8, free of lone surrogate escapes
//     and of names given twice in one object is accepted exactly when encoding/json accepts
//     it, with the same value, and "EMAIL" never sets email (json v2 and v1 differ by design
//     on those rules: case-insensitive names, duplicates, invalid Unicode);
//   - invalid UTF-8 anywhere and lone surrogate escapes ("\ud800") anywhere, unknown members
//     included, are always refused with 400;
//   - what it accepts re-encodes to JSON that it decodes to the same value;
//   - over the limit is 413: on the declared length without reading a byte, or, with no
//     declared length, after at most limit+1 bytes; a gzip body is held to the limit both as
//     sent and decompressed, and is otherwise decoded exactly like the same body sent plain;
//   - a body the route may leave out (DecodeOptional) may be empty or blank;
//   - memory: the bytes it allocates are at most a fixed multiple of the body (decompressed)
//     plus a constant, so a small hostile body cannot claim memory.
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range decodeFuzzSeeds() {
		f.Add([]byte(seed), uint8(0), uint16(4096))
		f.Add([]byte(seed), uint8(fuzzChunked|fuzzGzip), uint16(4096))
	}
	f.Add([]byte(`{"email":"a@x.io","password":"password1"}`), uint8(0), uint16(10))
	f.Add([]byte(`{"email":"a@x.io","password":"password1"}`), uint8(fuzzChunked), uint16(10))
	f.Add([]byte(`{"email":"a@x.io","password":"password1"}`), uint8(fuzzGzip), uint16(30))
	f.Add([]byte(`{"text":"`+strings.Repeat("a", 300)+`"}`), uint8(fuzzGzip|fuzzChunked), uint16(64))
	f.Add([]byte(""), uint8(fuzzOptional), uint16(100))
	f.Add([]byte(" \n"), uint8(fuzzOptional|fuzzChunked), uint16(100))
	f.Add(gzipBytes(f, []byte(`{"email":"a@x.io"}`)), uint8(fuzzRawGzip), uint16(4096))
	f.Add(append(gzipBytes(f, []byte(`{"email":`)), gzipBytes(f, []byte(`"a@x.io"}`))...), uint8(fuzzRawGzip|fuzzChunked), uint16(4096))
	f.Add(gzipBytes(f, []byte(`{"email":"a@x.io"}`))[:20], uint8(fuzzRawGzip), uint16(4096))
	f.Add(gzipBytes(f, bytes.Repeat([]byte(" "), 10000)), uint8(fuzzRawGzip), uint16(4096))
	f.Add([]byte("not gzip"), uint8(fuzzRawGzip), uint16(4096))
	gin.SetMode(gin.ReleaseMode)
	f.Fuzz(func(t *testing.T, body []byte, mode uint8, limit16 uint16) {
		limit := int64(limit16) + 1
		sent := decodeSent{chunked: mode&fuzzChunked != 0, optional: mode&fuzzOptional != 0}
		switch {
		case mode&fuzzRawGzip != 0:
			sent.body, sent.gzip = body, true
			// plain is what compress/gzip makes of the stream, up to limit+1 bytes.
			plain, ok := gunzipReference(body, limit)
			switch {
			case len(body) == 0 && sent.optional && !sent.chunked:
				// Nothing sent: an absent body, whatever its encoding says.
				if got := runDecode(t, sent, limit); got.status != 200 {
					t.Fatalf("an absent optional body: %s", got)
				}
			case len(body) > int(limit) && !sent.chunked:
				checkTooLarge(t, runDecode(t, sent, limit), sent, limit)
			case !ok || len(plain) > int(limit):
				// A stream that does not decompress, or decompresses past the limit: refused
				// while it is read, with 400 (the gzip, or the UTF-8 of what came out first)
				// or 413.
				got := runDecode(t, sent, limit)
				if got.status != 400 && got.status != 413 {
					t.Fatalf("a stream that does not decompress within %d bytes (ok %v): %s", limit, ok, got)
				}
				checkRead(t, got, sent, limit)
				checkMemory(t, got, sent, int(limit)+1)
			case len(body) > int(limit):
				// Sent without a length, the stream passes the limit before it ends.
				checkTooLarge(t, runDecode(t, sent, limit), sent, limit)
			default:
				checkSameAsPlain(t, plain, sent, limit)
			}
			return
		case mode&fuzzGzip != 0:
			sent.body, sent.gzip = gzipBytes(t, body), true
			if len(sent.body) > int(limit) || len(body) > int(limit) {
				// Over the limit as sent, or as it comes out.
				checkTooLarge(t, runDecode(t, sent, limit), sent, limit)
				return
			}
			checkSameAsPlain(t, body, sent, limit)
			return
		}
		sent.body = body
		got := runDecode(t, sent, limit)
		checkRead(t, got, sent, limit)
		if len(body) > int(limit) {
			checkTooLarge(t, got, sent, limit)
			return
		}
		checkPlain(t, body, sent, got)
	})
}

// The ways FuzzDecodeJSON sends a body (bits of its mode argument).
const (
	// fuzzChunked sends no Content-Length.
	fuzzChunked = 1 << iota
	// fuzzGzip compresses the body and sends it with Content-Encoding: gzip to a route that
	// accepts it.
	fuzzGzip
	// fuzzRawGzip sends the body itself as the gzip stream.
	fuzzRawGzip
	// fuzzOptional decodes as DecodeOptional does (logout).
	fuzzOptional
)

// fuzzRequest has a field of each shape the service's request bodies use.
type fuzzRequest struct {
	Email       string          `json:"email"`
	Password    string          `json:"password"`
	Text        string          `json:"text"`
	Name        json.RawMessage `json:"name"`
	Description *string         `json:"description"`
	Tags        *[]string       `json:"tags"`
	Days        *Int            `json:"expires_in_days"`
}

// fuzzFields are its members' names, for the reference decoder.
func (r *fuzzRequest) fields() map[string]any {
	return map[string]any{
		"email": &r.Email, "password": &r.Password, "text": &r.Text, "name": &r.Name,
		"description": &r.Description, "tags": &r.Tags, "expires_in_days": &r.Days,
	}
}

func decodeFuzzSeeds() []string {
	return []string{
		`{"email":"a@x.io","password":"password1","name":"Ann"}`,
		`{"text":"hello\n\u00e9\ud83d\ude00\"\\\/\b\f\r\t"}`,
		`{"description":null,"tags":[],"expires_in_days":30,"name":null}`,
		`{"tags":["a","b",null],"description":"d","expires_in_days":-0}`,
		`{"name":[1, 2 ,{"a" : "\u0041"}],"unknown":{"x":[true,false,null,1.5e-3]}}`,
		`{"expires_in_days":1e2}`, `{"expires_in_days":1.0}`, `{"expires_in_days":99999999999999999999}`,
		`{"expires_in_days":"3"}`, `{"email":5}`, `{"email":null}`, `{"text":null,"tags":null}`, `{"expires_in_days":null}`, `{"tags":"a"}`, `{"tags":[1]}`, `{"description":{}}`,
		`{"EMAIL":"a@x.io"}`, `{"Email":"a","email":"b"}`, `{"email":"a","email":"b"}`,
		`{"\u0065mail":"a","email":"b"}`, `{"x":{"a":1,"a":2}}`, `{"x":[{"a":1},{"a":2}]}`,
		`{"email":"\ud800"}`, `{"email":"\udc00\ud800"}`, `{"x":"\ud800\u0041"}`, `{"\ud800":1}`,
		`{"email":"\ud83d\ude00"}`, "{\"email\":\"\xff\"}", "{\"x\":\"\xed\xa0\x80\"}", "{\"x\":\"\xc0\xaf\"}",
		"{\"x\":\"\t\"}", `{"x":"\x"}`, `{"x":"\u00"}`, `{"email":"a"`, `{"email":`, `{`, `{}`,
		" {} ", "{} {}", "{}x", "{},", "[]", "null", `"s"`, "5", "", " \n\t", "\ufeff{}",
		`{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`,
		`{"x":` + strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100) + `}`,
		`{"x":{` + manyNames(100) + `"e":5}}`,
		`{"a":1,}`, `{'a':1}`, `{"a":01}`, `{"a":-}`, `{"a":+1}`, `{"a":.5}`, `{"a":NaN}`,
		`{"email":"a@x.io","password":"` + strings.Repeat(`\u00e9`, 50) + `"}`,
	}
}

// manyNames is n distinct members, each followed by a comma.
func manyNames(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(`"n` + strconv.Itoa(i) + `":0,`)
	}
	return b.String()
}

// decodeSent is one way of sending a body.
type decodeSent struct {
	body     []byte
	chunked  bool
	gzip     bool
	optional bool
}

// decodeResult is decodeJSON's answer.
type decodeResult struct {
	status int // 200 when it accepted the body
	code   string
	detail string
	value  fuzzRequest
	read   int64  // bytes of the body as sent that were read
	alloc  uint64 // bytes allocated by decodeJSON
}

func (r decodeResult) String() string {
	if r.status == 200 {
		v, _ := json.Marshal(r.value)
		if len(v) > 300 {
			v = append(v[:300], "..."...)
		}
		return "accepted " + string(v)
	}
	return http.StatusText(r.status) + " " + r.code + ": " + r.detail
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func runDecode(t testing.TB, sent decodeSent, limit int64) decodeResult {
	t.Helper()
	rec := httptest.NewRecorder()
	c := gin.CreateTestContextOnly(rec, decodeFuzzEngine)
	src := &countingReader{r: bytes.NewReader(sent.body)}
	req := httptest.NewRequest(http.MethodPost, "/fuzz", io.NopCloser(src))
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = int64(len(sent.body))
	if sent.chunked {
		req.ContentLength = -1
	}
	if sent.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	c.Request = req
	s := fuzzKernel()
	var dst fuzzRequest
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	ok := s.decodeJSON(c, bodyOptions{limit: limit, compressed: sent.gzip, optional: sent.optional}, &dst)
	runtime.ReadMemStats(&after)
	out := decodeResult{status: 200, value: dst, read: src.n, alloc: after.TotalAlloc - before.TotalAlloc}
	if !ok {
		var p Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != rec.Code {
			t.Fatalf("refused with %d and a body that is not its problem document (%v): %q", rec.Code, err, rec.Body.String())
		}
		out.status, out.code, out.detail = rec.Code, p.Code, p.Detail
	} else if rec.Body.Len() != 0 {
		t.Fatalf("accepted, and wrote %q", rec.Body.String())
	}
	// The detail names the problem without echoing the body beyond a character or two.
	if len(out.detail) > 200 {
		t.Fatalf("a %d-byte detail: %q", len(out.detail), out.detail)
	}
	switch {
	case ok:
	case out.status == 400 && out.code == CodeMalformedRequest:
	case out.status == 413 && out.code == CodePayloadTooLarge:
	default:
		t.Fatalf("answered %s", out)
	}
	return out
}

// decodeFuzzEngine is the engine of runDecode's contexts, made once.
var decodeFuzzEngine = func() *gin.Engine {
	gin.SetMode(gin.ReleaseMode) // before gin.New, which warns in debug mode
	return gin.New()
}()

// fuzzKernel is the kernel outside a router (as kernelOf makes it), made once.
var fuzzKernel = sync.OnceValue(func() *server {
	return &server{log: slog.New(slog.DiscardHandler), readiness: NewReadiness(nil), problems: newProblemRegistry()}
})

// decodeMemoryPerByte and decodeMemoryConstant bound what one decode may allocate, gzip
// reader included: a fixed multiple of the body (decompressed) plus a constant, so that a small
// hostile body cannot claim memory. Text costs about 2 bytes per byte (the body read whole and
// the string it decodes to; up to 5 when it arrives in chunks of unknown total); short member
// names cost the most, near 20 (json v2 keeps every name of an object to refuse duplicates, in
// a map past 64 names); the constant covers the decoder, a gzip reader (its 32 KiB window and
// tables) and the problem document.
const (
	decodeMemoryPerByte  = 20
	decodeMemoryConstant = 64 << 10
	gzipMemoryConstant   = 64 << 10
)

func checkRead(t *testing.T, got decodeResult, sent decodeSent, limit int64) {
	t.Helper()
	if got.read > limit+1 {
		t.Fatalf("read %d bytes of a body limited to %d: %s", got.read, limit, got)
	}
	if !sent.chunked && int64(len(sent.body)) > limit && got.read != 0 {
		t.Fatalf("read %d bytes of a body declared longer than the limit", got.read)
	}
}

// checkMemory checks the allocations of a decode of a body that is n bytes decompressed.
func checkMemory(t *testing.T, got decodeResult, sent decodeSent, n int) {
	t.Helper()
	bound := uint64(decodeMemoryPerByte*n + decodeMemoryConstant)
	if sent.gzip {
		bound += gzipMemoryConstant
	}
	bound *= allocFactor
	if got.alloc > bound {
		t.Fatalf("allocated %d bytes for a %d-byte body (bound %d): %s", got.alloc, n, bound, got)
	}
}

// checkTooLarge: a body over the limit is 413, unless invalid UTF-8 was met in what was read
// before the limit (400).
func checkTooLarge(t *testing.T, got decodeResult, sent decodeSent, limit int64) {
	t.Helper()
	checkRead(t, got, sent, limit)
	if got.status == 413 {
		return
	}
	if got.status != 400 || !strings.Contains(got.detail, "UTF-8") || !sent.chunked && !sent.gzip {
		t.Fatalf("a body over the %d-byte limit: %s", limit, got)
	}
}

// checkSameAsPlain: a gzip body that decompresses to plain within the limit is answered as
// plain itself is.
func checkSameAsPlain(t *testing.T, plain []byte, sent decodeSent, limit int64) {
	t.Helper()
	got := runDecode(t, sent, limit)
	checkRead(t, got, sent, limit)
	checkMemory(t, got, sent, len(plain))
	want := runDecode(t, decodeSent{body: plain, chunked: sent.chunked, optional: sent.optional}, limit)
	if got.status != want.status || got.detail != want.detail || !reflect.DeepEqual(got.value, want.value) {
		t.Fatalf("gzip: %s\nplain: %s", got, want)
	}
}

// checkPlain checks the answer to a body sent plain within the limit against the reference.
func checkPlain(t *testing.T, body []byte, sent decodeSent, got decodeResult) {
	t.Helper()
	checkMemory(t, got, sent, len(body))
	ref := referenceDecode(body)
	if sent.optional && ref.why == "empty" {
		if got.status != 200 || !reflect.DeepEqual(got.value, fuzzRequest{}) {
			t.Fatalf("an optional body left blank: %s", got)
		}
		return
	}
	switch ref.why {
	case "":
		if got.status != 200 {
			t.Fatalf("refused a body encoding/json accepts as %+v: %s", ref.value, got)
		}
		if !reflect.DeepEqual(got.value, ref.value) {
			t.Fatalf("decoded\n%s\nencoding/json decodes\n%+v", got, ref.value)
		}
		checkRoundTrip(t, got.value)
	case "utf8":
		if got.status != 400 || !strings.Contains(got.detail, "UTF-8") {
			t.Fatalf("a body that is not UTF-8: %s", got)
		}
	default:
		if got.status != 400 {
			t.Fatalf("accepted a body refused for %s: %s", ref.why, got)
		}
	}
}

// checkRoundTrip: an accepted value, encoded again, decodes to itself.
func checkRoundTrip(t *testing.T, v fuzzRequest) {
	t.Helper()
	again, err := jsonv2.Marshal(v, jsonv2.OmitZeroStructFields(true))
	if err != nil {
		t.Fatalf("re-encoding %+v: %v", v, err)
	}
	got := runDecode(t, decodeSent{body: again}, int64(len(again)))
	if got.status != 200 {
		t.Fatalf("its re-encoding %s is refused: %s", again, got)
	}
	if !reflect.DeepEqual(canonicalRaw(t, got.value), canonicalRaw(t, v)) {
		t.Fatalf("decoded %+v, re-encoded as %s, decodes to %+v", v, again, got.value)
	}
}

// canonicalRaw puts the raw member in canonical form (RFC 8785): the encoder reformats raw
// values.
func canonicalRaw(t *testing.T, v fuzzRequest) fuzzRequest {
	t.Helper()
	if v.Name != nil {
		raw := jsontext.Value(bytes.Clone(v.Name))
		if err := raw.Canonicalize(); err != nil {
			t.Fatalf("raw member %q: %v", v.Name, err)
		}
		v.Name = json.RawMessage(raw)
	}
	return v
}

// referenceResult is what encoding/json makes of a body: why is "" when it is accepted.
type referenceResult struct {
	why   string
	value fuzzRequest
}

// referenceDecode decodes body with encoding/json, member by member: the value of each member
// whose name is exactly a field's JSON name goes into that field, and every other member
// ("EMAIL" included) is ignored. It refuses, in this order, what the contract refuses before
// decoding (invalid UTF-8, a blank body, a body that is not an object), then lone surrogate
// escapes, invalid JSON (trailing data included), a body past the kernel's shape bounds
// (nested more than 64 deep, more than 1,024 members and array elements, a member name over
// 64 bytes as sent), a name given twice in one object (anywhere), and a value of the wrong
// type: the rules where json v2's options differ from encoding/json's
// defaults are checked here by hand, so every other body is compared with encoding/json.
func referenceDecode(body []byte) referenceResult {
	refuse := func(why string) referenceResult { return referenceResult{why: why} }
	if !utf8.Valid(body) {
		return refuse("utf8")
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	switch {
	case len(trimmed) == 0:
		return refuse("empty")
	case trimmed[0] != '{':
		return refuse("not an object")
	case loneSurrogate(body):
		return refuse("surrogate")
	case !json.Valid(body):
		return refuse("syntax")
	}
	switch shape := walkBody(body); {
	case shape.depth > 64, shape.values > 1024, shape.longName > 64:
		return refuse("shape")
	case shape.duplicate:
		return refuse("duplicate")
	}
	var out referenceResult
	fields := out.value.fields()
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // {
		panic(err)
	}
	var typeErr bool
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			panic(err)
		}
		name := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			panic(err)
		}
		dst, known := fields[name]
		if !known {
			continue // unknown, "EMAIL" included
		}
		if name == "expires_in_days" {
			// *Int: left out to be unset, any number sets it (Whole when a plain integer in
			// int64), null or anything else is the wrong type.
			switch {
			case raw[0] == '-' || '0' <= raw[0] && raw[0] <= '9':
				if v, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
					out.value.Days = &Int{Value: v, Whole: true}
				} else {
					out.value.Days = &Int{text: string(raw)}
				}
			default:
				typeErr = true
			}
			continue
		}
		if nullOfScalar(raw, reflect.TypeOf(dst).Elem()) {
			typeErr = true
			continue
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			var ute *json.UnmarshalTypeError
			if !errors.As(err, &ute) {
				panic(err)
			}
			typeErr = true
		}
	}
	if typeErr {
		return refuse("type")
	}
	return out
}

// nullOfScalar reports whether raw, valid JSON, holds null where t, its destination's type,
// has a string, number or boolean: the decoder refuses that as a value of the wrong type
// (decodeOptions), where encoding/json leaves the zero value. A pointer or a json.RawMessage
// may hold null (an optional number, *Int, is the reference's own case); a slice's elements
// are checked against the element type.
func nullOfScalar(raw []byte, t reflect.Type) bool {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		panic(err)
	}
	return nullIn(v, t)
}

func nullIn(v any, t reflect.Type) bool {
	if t == reflect.TypeFor[json.RawMessage]() {
		return false
	}
	switch t.Kind() {
	case reflect.Pointer:
		return v != nil && nullIn(v, t.Elem())
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64:
		return v == nil
	case reflect.Slice:
		elems, _ := v.([]any)
		for _, e := range elems {
			if nullIn(e, t.Elem()) {
				return true
			}
		}
	}
	return false
}

// loneSurrogate reports whether a string in b holds a \u escape of a surrogate that is not
// half of a pair (a high one followed by a \u escape of a low one).
func loneSurrogate(b []byte) bool {
	hex4 := func(i int) (rune, bool) {
		if i+4 > len(b) {
			return 0, false
		}
		var r rune
		for _, c := range b[i : i+4] {
			switch {
			case '0' <= c && c <= '9':
				r = r<<4 | rune(c-'0')
			case 'a' <= c && c <= 'f':
				r = r<<4 | rune(c-'a'+10)
			case 'A' <= c && c <= 'F':
				r = r<<4 | rune(c-'A'+10)
			default:
				return 0, false
			}
		}
		return r, true
	}
	inString := false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case !inString:
			inString = c == '"'
		case c == '"':
			inString = false
		case c == '\\' && i+1 < len(b) && b[i+1] == 'u':
			r, ok := hex4(i + 2)
			switch {
			case !ok:
				i++
			case 0xdc00 <= r && r <= 0xdfff:
				return true
			case 0xd800 <= r && r <= 0xdbff:
				if i+12 > len(b) || b[i+6] != '\\' || b[i+7] != 'u' {
					return true
				}
				if low, ok := hex4(i + 8); !ok || low < 0xdc00 || low > 0xdfff {
					return true
				}
				i += 11
			default:
				i += 5
			}
		case c == '\\':
			i++
		}
	}
	return false
}

// bodyShape is what walkBody learns of a valid JSON body.
type bodyShape struct {
	duplicate bool // an object names a member twice (names compared once unescaped)
	depth     int  // the deepest nesting of arrays and objects, the body's object being 1
	values    int  // members and array elements, at any depth
	longName  int  // the longest member name, in bytes as sent
}

// walkBody reads b, valid JSON, with encoding/json's tokenizer.
func walkBody(b []byte) bodyShape {
	type frame struct {
		object    bool
		expectKey bool
		names     map[string]bool
	}
	var (
		shape bodyShape
		stack []*frame
	)
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		before := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return shape
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.expectKey {
			if name, ok := tok.(string); ok {
				shape.values++
				// The name as sent: what the tokenizer read, less the separators before it.
				raw := bytes.TrimLeft(b[before:dec.InputOffset()], " \t\r\n,")
				shape.longName = max(shape.longName, len(raw)-2)
				if top.names[name] {
					shape.duplicate = true
				}
				top.names[name] = true
				top.expectKey = false
				continue
			}
		}
		if top != nil && !top.object && tok != json.Delim(']') {
			shape.values++ // an array element
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, expectKey: true, names: map[string]bool{}})
			shape.depth = max(shape.depth, len(stack))
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			shape.depth = max(shape.depth, len(stack))
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) > 0 {
				top = stack[len(stack)-1]
			} else {
				top = nil
			}
		}
		// A value ended: in an object, a name comes next.
		if top != nil && top.object {
			top.expectKey = true
		}
	}
}

// gunzipReference decompresses b with compress/gzip, reading at most limit+1 bytes out; ok
// is false when the stream is not valid gzip within them.
func gunzipReference(b []byte, limit int64) ([]byte, bool) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, false
	}
	out, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if int64(len(out)) > limit {
		return out, true
	}
	return out, err == nil
}

func gzipBytes(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw, _ := gzipWriters.Get().(*gzip.Writer)
	if zw == nil {
		zw = gzip.NewWriter(&buf)
	} else {
		zw.Reset(&buf)
	}
	defer gzipWriters.Put(zw)
	if _, err := zw.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// gzipWriters are reused: a new one allocates its compressor's tables, near a megabyte.
var gzipWriters sync.Pool
