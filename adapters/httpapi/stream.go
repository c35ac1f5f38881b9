package httpapi

import (
	"bytes"
	"io"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// Large responses (a post holds up to 1 MiB of text, which escapes to up to 6 MiB of JSON; a
// list page up to 4 MiB of posts) are written by streaming rather than through WriteJSON:
// encoding such a body into one buffer first takes several times its size per request (the
// buffer doubles as it grows), which many concurrent requests turn into hundreds of MiB. A
// module computes the exact size first (JSONStringBytes), so the response still carries its
// Content-Length, and the bytes go out through a small pooled buffer; runs of text that need
// no escaping are handed to the connection as they are, without a copy. The strings come out
// byte for byte as encoding/json (HTML escaping off) writes them, which stream_test.go checks.

// streamChunk is the pooled buffer's size: large enough that small responses go out in one
// write, small enough that holding one per request in flight costs little.
const streamChunk = 32 << 10

var streamBuffers = newBufferPool(streamChunk)

// JSONStream writes JSON to a response through a pooled buffer of streamChunk bytes.
// StartJSONStream sends the headers; the module then writes the document with Raw (bytes as
// they are) and String (a JSON string), and ends with Finish.
type JSONStream struct {
	w   io.Writer
	buf *bytes.Buffer
	err error // the first write error; the client has gone, so the rest is dropped
}

// StartJSONStream answers status with a JSON body of exactly size bytes, to be written next.
func StartJSONStream(c *gin.Context, status int, size int64) *JSONStream {
	h := c.Writer.Header()
	h.Set("Content-Type", jsonContentType)
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	c.Status(status)
	SendTimeFor(c, size)
	return &JSONStream{w: c.Writer, buf: streamBuffers.get()}
}

// NewJSONStream writes a JSON document to w through a pooled buffer, for a module that keeps
// the encoded form (Finish still flushes it and gives the buffer back).
func NewJSONStream(w io.Writer) *JSONStream {
	return &JSONStream{w: w, buf: streamBuffers.get()}
}

// WriteEncodedJSON answers status with body, an encoded JSON document, in one write.
func WriteEncodedJSON(c *gin.Context, status int, body []byte) {
	h := c.Writer.Header()
	h.Set("Content-Type", jsonContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	c.Status(status)
	SendTimeFor(c, int64(len(body)))
	_, _ = c.Writer.Write(body)
}

// Raw appends s as it is. A piece too big for the buffer is written straight through.
func (j *JSONStream) Raw(s string) {
	if j.buf.Len()+len(s) > streamChunk {
		j.flush()
		if len(s) > streamChunk {
			if j.err == nil {
				_, j.err = io.WriteString(j.w, s)
			}
			return
		}
	}
	j.buf.WriteString(s)
}

// Bytes appends b as it is, like Raw, without converting it to a string first.
func (j *JSONStream) Bytes(b []byte) {
	if j.buf.Len()+len(b) > streamChunk {
		j.flush()
		if len(b) > streamChunk {
			if j.err == nil {
				_, j.err = j.w.Write(b)
			}
			return
		}
	}
	j.buf.Write(b)
}

// Failed reports whether a write failed (the client went away), so that a module producing a
// long document can stop early.
func (j *JSONStream) Failed() bool { return j.err != nil }

// String appends s as a JSON string.
func (j *JSONStream) String(s string) {
	j.Raw(`"`)
	escapeJSONString(s, j.Raw)
	j.Raw(`"`)
}

// Time appends Timestamp(t) as a JSON string, formatted in the buffer's free space rather
// than into a new string: a list page has one per post, and the strings were a tenth of a
// list miss's allocations.
func (j *JSONStream) Time(t time.Time) {
	if j.buf.Len()+maxTimestampJSON > streamChunk {
		j.flush()
	}
	b := append(j.buf.AvailableBuffer(), '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	j.buf.Write(append(b, '"'))
}

// TimestampJSONBytes is the length of Timestamp(t) encoded as a JSON string, quotes included
// (a timestamp needs no escaping), found without making the string.
func TimestampJSONBytes(t time.Time) int64 {
	var b [maxTimestampJSON]byte
	return int64(len(t.UTC().AppendFormat(b[:0], time.RFC3339Nano))) + 2
}

// maxTimestampJSON bounds a quoted UTC RFC 3339 timestamp with nanoseconds (32 bytes for a
// year of four digits) with room to spare; a longer one is still right, only allocated.
const maxTimestampJSON = 64

// MaxTimestampJSONBytes bounds TimestampJSONBytes for any time: 41 bytes at most, for a
// year of twelve digits and a sign.
const MaxTimestampJSONBytes = maxTimestampJSON

func (j *JSONStream) flush() {
	if j.buf.Len() > 0 && j.err == nil {
		_, j.err = j.w.Write(j.buf.Bytes())
	}
	j.buf.Reset()
}

// Finish sends what is buffered and gives the buffer back.
func (j *JSONStream) Finish() {
	j.flush()
	streamBuffers.put(j.buf)
}

// JSONStringBytes is the length of s encoded as a JSON string, quotes included.
func JSONStringBytes(s string) int64 {
	n := int64(2)
	escapeJSONString(s, func(piece string) { n += int64(len(piece)) })
	return n
}

// JSONStringMaxBytes is the most JSONStringBytes gives for a string of n bytes: every byte
// escaped as \u00XX or \ufffd, six for one (U+2028 takes six for three), and the quotes.
func JSONStringMaxBytes(n int64) int64 { return 2 + 6*n }

// escapeJSONString hands emit the body of s as a JSON string (without the quotes), in pieces:
// runs of bytes that need no escaping, and escapes. It follows encoding/json with HTML
// escaping off: quote, backslash and control characters are escaped (the five with short
// forms as such, the others as \u00XX), invalid UTF-8 becomes \ufffd, and U+2028 and U+2029
// are escaped so the output is also valid JavaScript.
func escapeJSONString(s string, emit func(string)) {
	start := 0
	// Eight bytes at a time while none of them needs a look: post texts are mostly plain
	// ASCII, and byte by byte this loop took 12 % of the server's CPU on list misses. A word
	// that does need one is then walked byte by byte (up to wordEnd) before the next test.
	wordEnd := 0
	for i := 0; i < len(s); {
		if i >= wordEnd {
			for i+8 <= len(s) && !special8(s[i:i+8]) {
				i += 8
			}
			if i >= len(s) {
				break
			}
			wordEnd = i + 8
		}
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			if start < i {
				emit(s[start:i])
			}
			emit(asciiEscapes[b])
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		var esc string
		switch {
		case r == utf8.RuneError && size == 1:
			esc = `\ufffd`
		case r == '\u2028':
			esc = `\u2028`
		case r == '\u2029':
			esc = `\u2029`
		default:
			i += size
			continue
		}
		if start < i {
			emit(s[start:i])
		}
		emit(esc)
		i += size
		start = i
	}
	if start < len(s) {
		emit(s[start:])
	}
}

// special8 reports whether any of the 8 bytes of s (len(s) == 8) is a control character, a
// quote, a backslash or not ASCII: the bytes escapeJSONString must look at one by one. It
// tests the eight at once (SWAR): a byte below n sets its top bit in (x - n×0x01…) &^ x, and a
// byte equal to c is a zero byte of x ^ c×0x01…; borrows may set further bits, but only above
// a byte that matched, so the answer is exact.
func special8(s string) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	x := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	q := x ^ (lo * '"')
	bs := x ^ (lo * '\\')
	return ((x-lo*0x20)&^x|(q-lo)&^q|(bs-lo)&^bs|x)&hi != 0
}

// asciiEscapes holds the escape of every ASCII byte that needs one; the others are "".
var asciiEscapes = func() (t [utf8.RuneSelf]string) {
	const hex = "0123456789abcdef"
	for b := range 0x20 {
		t[b] = `\u00` + string(hex[b>>4]) + string(hex[b&0xf])
	}
	t['\b'], t['\f'], t['\n'], t['\r'], t['\t'] = `\b`, `\f`, `\n`, `\r`, `\t`
	t['"'], t['\\'] = `\"`, `\\`
	return t
}()
