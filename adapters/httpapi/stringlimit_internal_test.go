package httpapi

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
)

var errTextTooLarge = errors.New("text too large")

// limitText runs body through a limiter of text at limit bytes, read in pieces of chunk bytes
// (so that escapes and names split across reads), and reports whether it stopped the read.
func limitText(t *testing.T, body []byte, limit int64, chunk int) bool {
	t.Helper()
	l := newStringLimiter(&pieces{b: body, n: max(chunk, 1)}, []StringLimit{{Member: "text", Bytes: limit, Err: errTextTooLarge}})
	_, err := io.Copy(io.Discard, l)
	var over *StringTooLargeError
	switch {
	case err == nil:
		return false
	case errors.As(err, &over) && errors.Is(err, errTextTooLarge) && over.Limit.Member == "text":
		return true
	}
	t.Fatalf("read %q: %v", body, err)
	return false
}

// pieces reads b n bytes at a time.
type pieces struct {
	b []byte
	n int
}

func (p *pieces) Read(dst []byte) (int, error) {
	if len(p.b) == 0 {
		return 0, io.EOF
	}
	n := copy(dst[:min(len(dst), p.n)], p.b)
	p.b = p.b[n:]
	return n, nil
}

// TestStringLimiterCountsTheDecodedValue: the count is of the value as decoded (escapes count
// what they stand for, UTF-8 its bytes), of the top-level member only, matched exactly.
func TestStringLimiterCountsTheDecodedValue(t *testing.T) {
	cases := []struct {
		name string
		body string
		over bool
	}{
		{"at the limit", `{"text":"abcd"}`, false},
		{"one over", `{"text":"abcde"}`, true},
		{"escapes count one byte each", `{"text":"\n\t\"\\"}`, false},
		{"five escapes", `{"text":"\n\t\"\\\/"}`, true},
		{"\\u escapes of ASCII count one", `{"text":"\u0061\u0062\u0063\u0064"}`, false},
		{"a \\u escape of é counts two", `{"text":"ab\u00e9"}`, false},
		{"a \\u escape of 中 counts three", `{"text":"ab\u4e2d"}`, true},
		{"a surrogate pair counts four", `{"text":"\ud83d\ude00"}`, false},
		{"a pair and one more", `{"text":"\ud83d\ude00a"}`, true},
		{"raw UTF-8 counts its bytes", `{"text":"é中"}`, true},
		{"raw UTF-8 at the limit", `{"text":"éé"}`, false},
		{"another member is not counted", `{"title":"abcdefgh","text":"ab"}`, false},
		{"a nested text is not counted", `{"meta":{"text":"abcdefgh"},"text":"ab"}`, false},
		{"text in an array is not counted", `{"list":["text","abcdefgh"],"text":"ab"}`, false},
		{"a value that looks like the name", `{"other":"text","x":"abcdefgh"}`, false},
		{"a name in a value string with quotes", `{"a":"\",\"text\":\"abcdefgh","text":"ab"}`, false},
		{"an escaped name matches", `{"t\u0065xt":"abcdefgh"}`, true},
		{"case matters", `{"TEXT":"abcdefgh"}`, false},
		{"a longer name does not match", `{"texts":"abcdefgh"}`, false},
		{"spaces around the colon", "{ \"text\" \n : \t \"abcdefgh\" }", true},
		{"a number value is not a string", `{"text":123456789}`, false},
		{"null", `{"text":null,"x":"abcdefgh"}`, false},
		{"after nested objects", `{"a":{"b":[1,{"c":"d"}]},"text":"abcdefgh"}`, true},
		{"an array body", `["text","abcdefgh"]`, false},
		{"the second of two", `{"text":"ab","text":"abcdefgh"}`, true},
	}
	for _, c := range cases {
		for _, chunk := range []int{1, 2, 3, 7, 4096} {
			if got := limitText(t, []byte(c.body), 4, chunk); got != c.over {
				t.Errorf("%s: %s in pieces of %d: over = %v, want %v", c.name, c.body, chunk, got, c.over)
			}
		}
	}
}

// TestStringLimiterStopsBeforeTheRest: the read fails within the piece that passes the limit,
// not at the end of the body.
func TestStringLimiterStopsBeforeTheRest(t *testing.T) {
	body := []byte(`{"text":"` + strings.Repeat("a", 1<<20) + `"}`)
	src := &pieces{b: body, n: 4096}
	l := newStringLimiter(src, []StringLimit{{Member: "text", Bytes: 1000, Err: errTextTooLarge}})
	if _, err := io.Copy(io.Discard, l); !errors.Is(err, errTextTooLarge) {
		t.Fatalf("read: %v, want the limit's error", err)
	}
	if read := len(body) - len(src.b); read > 4096 {
		t.Fatalf("%d bytes read before the refusal, want the first piece only", read)
	}
}

// FuzzStringLimiter: on any body the decoder accepts, the limiter stops the read exactly when
// the decoded top-level "text" is a string over the limit, however the body is cut into
// reads; on other bodies it never panics.
func FuzzStringLimiter(f *testing.F) {
	for _, seed := range []string{
		`{"text":"abcde"}`, `{"text":"\u00e9\u00e9\u00e9"}`, `{"t\u0065xt":"\ud83d\ude00x"}`,
		`{"a":{"text":"abcdefgh"},"text":"ab"}`, `{"a":"\"text\":\"abcdefgh","text":""}`,
		`{"text":"\/\b\f\n\r\t"}`, `{"text":null}`, `{"text":"a","text":"bbbbbbbbb"}`,
	} {
		f.Add([]byte(seed), uint8(4), uint8(1))
		f.Add([]byte(seed), uint8(0), uint8(5))
	}
	f.Fuzz(func(t *testing.T, body []byte, limit, chunk uint8) {
		over := limitText(t, body, int64(limit), int(chunk))
		var v struct {
			Text *string `json:"text"`
		}
		if err := jsonv2.Unmarshal(body, &v, decodeOptions); err != nil {
			return // refused by the decoder anyway: 413 or 400 are both refusals
		}
		want := v.Text != nil && len(*v.Text) > int(limit)
		if over != want {
			t.Fatalf("%q with limit %d in pieces of %d: limiter over = %v, decoded text %q", body, limit, chunk, over, deref(v.Text))
		}
	})
}

func deref(s *string) string {
	if s == nil {
		return "<absent>"
	}
	return *s
}

// TestStringLimiterPassesTheBodyThrough: what the limiter reads is the body, byte for byte.
func TestStringLimiterPassesTheBodyThrough(t *testing.T) {
	body := []byte(`{"text":"\u00e9 \"quoted\" \\ é","other":{"text":"nested"}}`)
	got, err := io.ReadAll(newStringLimiter(&pieces{b: body, n: 3}, []StringLimit{{Member: "text", Bytes: 100, Err: errTextTooLarge}}))
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read %q, %v; want the body", got, err)
	}
}
