package httpapi

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

func refEncode(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// awkwardTexts covers every escaping rule: quotes, backslashes, each control character, HTML
// characters (not escaped), DEL, U+2028/U+2029, multi-byte runes, invalid UTF-8, long runs.
func awkwardTexts() []string {
	var controls strings.Builder
	for b := range 0x20 {
		controls.WriteByte(byte(b))
	}
	texts := []string{
		"", "plain", `"quoted" \back\slash`, controls.String(), "<a href='x'>&amp;</a>\x7f",
		"line\u2028para\u2029end", "é€😀 mixed", "bad \xff\xfe utf-8 \xe2\x82", strings.Repeat("\x01", 70000),
		strings.Repeat("a", 3*streamChunk+7), strings.Repeat(`"`, streamChunk+1),
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		b := make([]byte, r.IntN(300))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		texts = append(texts, string(b))
	}
	return texts
}

func TestJSONStringBytesMatchesEncodingJSON(t *testing.T) {
	for _, s := range awkwardTexts() {
		want := int64(len(refEncode(t, s))) - 1 // Encode appends a newline
		if got := JSONStringBytes(s); got != want {
			t.Fatalf("JSONStringBytes(%q) = %d, want %d", truncate(s), got, want)
		}
	}
}

// record runs write against a recorder and checks the Content-Length it declared.
func record(t *testing.T, write func(c *gin.Context)) []byte {
	t.Helper()
	w := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(w)
	c.Request = httptest.NewRequest(http.MethodGet, "/", nil)
	write(c)
	body := w.Body.Bytes()
	if got := w.Header().Get("Content-Length"); got != strconv.Itoa(len(body)) {
		t.Fatalf("Content-Length %s for a body of %d bytes", got, len(body))
	}
	return body
}

// TestJSONStreamWritesWhatEncodingJSONWrites streams every awkward text as a JSON string,
// through buffer boundaries and around them, and compares with encoding/json.
func TestJSONStreamWritesWhatEncodingJSONWrites(t *testing.T) {
	for _, s := range awkwardTexts() {
		got := record(t, func(c *gin.Context) {
			js := StartJSONStream(c, http.StatusOK, JSONStringBytes(s)+1)
			defer js.Finish()
			js.String(s)
			js.Raw("\n")
		})
		if want := refEncode(t, s); !bytes.Equal(got, want) {
			t.Fatalf("streamed %q:\n got %s\nwant %s", truncate(s), truncate(string(got)), truncate(string(want)))
		}
	}
}

func truncate(s string) string {
	if len(s) > 80 && utf8.ValidString(s[:80]) {
		return s[:80] + "..."
	}
	if len(s) > 80 {
		return "(invalid UTF-8) " + strconv.Quote(s[:80])
	}
	return s
}
