package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
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
		if bound := JSONStringMaxBytes(int64(len(s))); want > bound {
			t.Fatalf("JSONStringMaxBytes(%d) = %d, under the %d bytes of %q", len(s), bound, want, truncate(s))
		}
	}
	// The bound is reached: a control character takes six bytes.
	if got, want := JSONStringBytes("\x01\x02"), JSONStringMaxBytes(2); got != want {
		t.Fatalf("two control characters take %d bytes, JSONStringMaxBytes(2) = %d", got, want)
	}
}

// TestMaxTimestampJSONBytesBoundsEveryYear encodes the earliest and latest times Go has.
func TestMaxTimestampJSONBytesBoundsEveryYear(t *testing.T) {
	for _, tm := range []time.Time{time.Unix(-1<<63, 0), time.Unix(1<<63-1, 999999999), time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)} {
		if got := TimestampJSONBytes(tm); got > MaxTimestampJSONBytes {
			t.Errorf("%v takes %d bytes, MaxTimestampJSONBytes is %d", tm, got, MaxTimestampJSONBytes)
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

// TestSpecial8 checks the eight-at-once test against the byte-wise rule: every byte value at
// every position among plain bytes, every pair of values at two positions (borrows between
// neighbours), and random words.
func TestSpecial8(t *testing.T) {
	special := func(b byte) bool { return b < 0x20 || b == '"' || b == '\\' || b >= utf8.RuneSelf }
	check := func(w []byte) {
		t.Helper()
		want := false
		for _, b := range w {
			want = want || special(b)
		}
		if got := special8(string(w)); got != want {
			t.Fatalf("special8(%q) = %v, want %v", w, got, want)
		}
	}
	for pos := range 8 {
		for v := range 256 {
			w := []byte("abcdefgh")
			w[pos] = byte(v)
			check(w)
		}
	}
	for p1 := range 8 {
		for p2 := range 8 {
			for v1 := range 256 {
				for _, v2 := range []byte{0x00, 0x1f, 0x20, 0x21, '"', 0x23, 0x5b, '\\', 0x5d, 0x7f, 0x80, 0xff} {
					w := []byte("        ")
					w[p1], w[p2] = byte(v1), v2
					check(w)
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 100000 {
		w := make([]byte, 8)
		for i := range w {
			w[i] = byte(r.IntN(256))
			if r.IntN(4) > 0 {
				w[i] = byte(0x20 + r.IntN(0x60)) // mostly printable ASCII
			}
		}
		check(w)
	}
}

// TestEscapingAroundEveryWordBoundary puts each kind of byte that needs a look at every
// offset of a mostly plain text, so the eight-at-once path hands over to the byte-wise one at
// every position, and compares with encoding/json.
func TestEscapingAroundEveryWordBoundary(t *testing.T) {
	for _, odd := range []string{`"`, `\`, "\x00", "\x1f", "\n", "\x7f", "é", "\u2028", "\xff", "😀", "\xe2\x82"} {
		for at := range 20 {
			s := strings.Repeat("x", at) + odd + strings.Repeat("y", 19-at)
			want := refEncode(t, s)
			got := record(t, func(c *gin.Context) {
				js := StartJSONStream(c, http.StatusOK, JSONStringBytes(s)+1)
				defer js.Finish()
				js.String(s)
				js.Raw("\n")
			})
			if !bytes.Equal(got, want) {
				t.Fatalf("streamed %q:\n got %s\nwant %s", s, got, want)
			}
		}
	}
}

// BenchmarkEscapeJSONString escapes post-like texts of 1 KiB: plain ASCII prose (the load
// runner's), and prose with a quote, a newline or an accented letter every 20 bytes or so.
func BenchmarkEscapeJSONString(b *testing.B) {
	texts := map[string]string{
		"plain": strings.Repeat("the quick brown fox jumps over the lazy dog while five boxing wizards jump quickly ", 13)[:1024],
		"mixed": strings.Repeat(`The committee met on Tuesday; "minutes" follow.`+"\nCafé notes, page 2. ", 15)[:1024],
	}
	for name, text := range texts {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			n := 0
			for b.Loop() {
				escapeJSONString(text, func(piece string) { n += len(piece) })
			}
			if n == 0 {
				b.Fatal("nothing emitted")
			}
		})
	}
}

// TestStreamedTimestamps checks JSONStream.Time and TimestampJSONBytes against
// String(Timestamp(t)) for instants with and without fractions (RFC3339Nano drops trailing
// zeros), in other zones, and across the buffer's end; and that neither allocates, which is
// what they are for.
func TestStreamedTimestamps(t *testing.T) {
	base := time.Date(2026, 12, 3, 17, 4, 5, 0, time.UTC)
	times := []time.Time{
		base, base.Add(time.Microsecond), base.Add(120 * time.Millisecond), base.Add(123456789),
		base.In(time.FixedZone("east", 5*3600+1800)), time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("west", -7*3600)),
		time.Unix(0, 0),
	}
	for _, ts := range times {
		want := refEncode(t, Timestamp(ts))
		if got := TimestampJSONBytes(ts); got != int64(len(want))-1 {
			t.Errorf("TimestampJSONBytes(%s) = %d, want %d", ts, got, len(want)-1)
		}
		// A run of text that leaves less room in the buffer than a timestamp needs.
		filler := strings.Repeat("a", streamChunk-10)
		got := record(t, func(c *gin.Context) {
			js := StartJSONStream(c, http.StatusOK, int64(len(filler))+TimestampJSONBytes(ts)+1)
			defer js.Finish()
			js.Raw(filler)
			js.Time(ts)
			js.Raw("\n")
		})
		if !bytes.Equal(got[len(filler):], want) {
			t.Errorf("Time(%s) wrote %s, want %s", ts, got[len(filler):], want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = TimestampJSONBytes(base) }); n != 0 {
		t.Errorf("TimestampJSONBytes allocates %v times", n)
	}
	js := NewJSONStream(io.Discard)
	defer js.Finish()
	if n := testing.AllocsPerRun(100, func() { js.Time(base) }); n != 0 {
		t.Errorf("JSONStream.Time allocates %v times", n)
	}
}
