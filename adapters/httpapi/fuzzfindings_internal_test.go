package httpapi

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/gin-gonic/gin"
)

// Regression tests for the memory FuzzDecodeJSON's bound found json v2 taking; see
// checkShape. Each body is also in testdata/fuzz/FuzzDecodeJSON where it fits.

// shapeNames is n members with distinct names of the given length (longer when n needs it).
func shapeNames(n, length int) string {
	var b strings.Builder
	for i := range n {
		id := strconv.Itoa(i)
		b.WriteString(`"` + strings.Repeat("n", max(length-len(id), 0)) + id + `":0,`)
	}
	return b.String()
}

// TestHostileBodyShapesTakeLittleMemory: bodies that took 12 to 50 times their size to decode
// are refused with 400 after being read, for about their own size.
func TestHostileBodyShapesTakeLittleMemory(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	cases := []struct {
		name  string
		body  string
		limit int64
	}{
		// 2.7 MB for 54 KB on a 64 KiB route (signup, login: no credential needed).
		{"nested 9,000 deep", `{"x":` + strings.Repeat(`{"a":`, 9000) + "1" + strings.Repeat("}", 9000) + `}`, SmallBodyLimit},
		// 109 MB for a 6 MiB post.
		{"500,000 short unknown names", `{"text":"x",` + shapeNames(int(postBodyLimit/13-100), 8) + `"z":0}`, postBodyLimit},
		// 74 MB for a 6 MiB post.
		{"60 names of 100 KB", `{"text":"x",` + shapeNames(60, 100_000) + `"z":0}`, postBodyLimit},
		// 1.7 MB for 64 KiB (images: tags and ids are arrays of strings).
		{"21,000 tags", `{"tags":[` + strings.Repeat(`"",`, 21_000) + `""]}`, SmallBodyLimit},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := runDecode(t, decodeSent{body: []byte(tc.body)}, tc.limit)
			if got.status != 400 || got.code != CodeMalformedRequest {
				t.Fatalf("%d-byte body: %s", len(tc.body), got)
			}
			// Read whole, then refused without decoding. The body is read into a buffer that
			// doubles as the bytes arrive (memory is reserved only for what was sent), which
			// allocates at most three times its length in all, one of them live at the end.
			if bound := (3*uint64(len(tc.body)) + 64<<10) * allocFactor; got.alloc > bound {
				t.Fatalf("allocated %d bytes for a %d-byte body, want at most %d", got.alloc, len(tc.body), bound)
			}
		})
	}
}

// TestBodyShapeBounds: the bounds themselves, and what they do not count.
func TestBodyShapeBounds(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	nest := func(levels int, open, close string) string { // levels beyond the body's object
		return `{"x":` + strings.Repeat(open, levels-1) + "1" + strings.Repeat(close, levels-1) + `}`
	}
	cases := []struct {
		name   string
		body   string
		accept bool
	}{
		{"objects 64 deep", nest(64, `{"a":`, "}"), true},
		{"objects 65 deep", nest(65, `{"a":`, "}"), false},
		{"arrays 64 deep", `{"x":` + strings.Repeat("[", 63) + strings.Repeat("]", 63) + `}`, true},
		{"arrays 65 deep", `{"x":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + `}`, false},
		{"1,024 members", `{` + shapeNames(1023, 8) + `"z":0}`, true},
		{"1,025 members", `{` + shapeNames(1024, 8) + `"z":0}`, false},
		{"1,023 elements and their member", `{"tags":[` + strings.Repeat(`"a",`, 1022) + `"a"]}`, true},
		{"1,024 elements and their member", `{"tags":[` + strings.Repeat(`"a",`, 1023) + `"a"]}`, false},
		{"members of nested objects count", `{"x":[` + strings.Repeat(`{"a":1,"b":2},`, 340) + `{}]}`, true},
		{"members of nested objects count past the bound", `{"x":[` + strings.Repeat(`{"a":1,"b":2},`, 342) + `{}]}`, false},
		{"empty arrays and objects hold nothing", `{"x":[` + strings.Repeat(`[],{},`, 500) + `[]]}`, true},
		{"a 64-byte name", `{"` + strings.Repeat("n", 64) + `":1}`, true},
		{"a 65-byte name", `{"` + strings.Repeat("n", 65) + `":1}`, false},
		{"a name is measured as sent", `{"` + strings.Repeat(`\u006e`, 11) + `":1}`, false},
		{"a long string value is no name", `{"text":"` + strings.Repeat("n", 5000) + `" , "a":1}`, true},
		{"structure inside strings does not count", `{"text":"` + strings.Repeat(`[{\":,\\`, 2000) + `"}`, true},
		{"escaped quotes end no string", `{"text":"\"` + strings.Repeat(`[`, 100) + `\\\""}`, true},
		{"a bulk delete of 100 ids", `{"ids":[` + strings.Repeat(`"0190a1b2-0000-7000-8000-000000000001",`, 99) + `"x"]}`, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := runDecode(t, decodeSent{body: []byte(tc.body)}, postBodyLimit)
			if tc.accept != (got.status == 200) {
				t.Fatalf("%s", got)
			}
			if !tc.accept && !strings.Contains(got.detail, "this API") && !strings.Contains(got.detail, "deep") {
				t.Fatalf("detail %q does not name the bound", got.detail)
			}
		})
	}
	// The largest body within the bounds: 1,024 names of 64 bytes in one object (json v2's
	// map of names) takes under a megabyte.
	body := `{` + shapeNames(1023, 64) + `"z":0}`
	for _, chunked := range []bool{false, true} {
		got := runDecode(t, decodeSent{body: []byte(body), chunked: chunked}, postBodyLimit)
		if got.status != 200 || got.alloc > 1<<20*allocFactor {
			t.Fatalf("chunked %v: %d bytes for %d: %s", chunked, got.alloc, len(body), got)
		}
	}
}

// TestGzipHeaderMeetsLimitOrTimeout: the limit or the read timeout met while the gzip header
// itself is read is 413 or 408, as anywhere else in the stream. It was 400 ("does not
// decompress"): gzip.NewReader's error was taken for a malformed stream whatever it was.
// FuzzDecodeJSON found the 413 case: a 60-byte gzip body without a length on a route limited
// to 8 bytes.
func TestGzipHeaderMeetsLimitOrTimeout(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	gz := gzipBytes(t, []byte(`{"email":"a@x.io","password":"password1"}`))
	for _, limit := range []int64{1, 8, 9, 10, int64(len(gz)) - 1} {
		got := runDecode(t, decodeSent{body: gz, gzip: true, chunked: true}, limit)
		if got.status != 413 {
			t.Errorf("limit %d, %d bytes sent without a length: %s", limit, len(gz), got)
		}
	}
	for _, cut := range []int{0, 5, 10, 20} {
		rec := httptest.NewRecorder()
		c := gin.CreateTestContextOnly(rec, decodeFuzzEngine)
		body := io.MultiReader(bytes.NewReader(gz[:cut]), iotest.ErrReader(os.ErrDeadlineExceeded))
		c.Request = httptest.NewRequest(http.MethodPost, "/fuzz", io.NopCloser(body))
		c.Request.ContentLength = -1
		c.Request.Header.Set("Content-Type", "application/json")
		c.Request.Header.Set("Content-Encoding", "gzip")
		var dst fuzzRequest
		if fuzzKernel().decodeJSON(c, bodyOptions{limit: 1 << 10, compressed: true}, &dst) || rec.Code != http.StatusRequestTimeout {
			t.Errorf("read timeout after %d bytes of gzip: %d %s", cut, rec.Code, rec.Body.String())
		}
	}
}
