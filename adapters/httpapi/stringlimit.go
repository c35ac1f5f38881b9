package httpapi

import (
	"bytes"
	"io"
	"unicode/utf8"
)

// StringLimit bounds the decoded size of one top-level string member of a route's JSON body
// (see Route.StringLimits).
type StringLimit struct {
	// Member is the member's name, matched exactly, as the decoder matches field names.
	Member string
	// Bytes is the most bytes of UTF-8 the decoded value may hold.
	Bytes int64
	// Err is answered (as Fail answers it) when the value passes Bytes: a domain error of
	// kind too large, so that the answer is the one the use case would have given.
	Err error
}

// StringTooLargeError is what the body reader returns once a bounded member has passed its
// limit; bodyReadError answers the limit's Err.
type StringTooLargeError struct{ Limit StringLimit }

func (e *StringTooLargeError) Error() string {
	return "httpapi: member " + e.Limit.Member + " of the request body is over its limit"
}

func (e *StringTooLargeError) Unwrap() error { return e.Limit.Err }

// stringLimiter passes a JSON body through and counts, as the bytes arrive, the decoded size
// of the top-level members its limits name, failing the read as soon as one passes its limit.
// A route's BodyLimit must admit the largest valid value however it is escaped (a byte of
// text can take six bytes of JSON, \u0001), so without it a body far over the value's limit
// but under the route's was read whole before being refused, and one sent slowly was answered
// 408 at the read timeout instead of 413.
//
// It follows only what it needs of JSON: strings (and their escapes, so that a quote or
// bracket inside one is not taken for structure), the nesting depth, and, in the top-level
// object, which string is a member name and which is a value. It judges nothing: the decoder
// refuses malformed bodies after the read. On a well-formed body its count is exact, so it
// refuses a body only when the decoded value is over the limit; on a malformed one it may
// answer 413 where the decoder would have answered 400, both refusals.
type stringLimiter struct {
	r      io.Reader
	limits []StringLimit

	depth     int
	started   bool // the first non-space byte has been seen
	object    bool // and it opened an object
	expectKey bool // in the top-level object, the next string is a member name

	inString bool
	isKey    bool         // the string being read is a top-level member name
	key      []byte       // its decoded bytes, up to keyCap; longer names match no limit
	keyLong  bool         // it passed keyCap, or holds an escaped surrogate
	pending  *StringLimit // the limit of the member whose name was just read
	counting *StringLimit // the limit of the string value being read
	n        int64        // decoded bytes of that value so far
	total    int64        // decoded bytes of every limited value so far (what decoding keeps)

	esc int  // 0: none; 1: after a backslash; 2 to 5: that many hex digits of \u read, plus 1
	hex rune // the \u escape's value so far
}

// keyCap bounds the member names the limiter keeps: longer ones match no limit.
const keyCap = 64

func newStringLimiter(r io.Reader, limits []StringLimit) *stringLimiter {
	return &stringLimiter{r: r, limits: limits, key: make([]byte, 0, keyCap)}
}

func (l *stringLimiter) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if over := l.scan(p[:n]); over != nil {
		return n, &StringTooLargeError{Limit: *over}
	}
	return n, err
}

// scan follows b and returns the limit a value passed, if one did.
func (l *stringLimiter) scan(b []byte) *StringLimit {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if l.inString {
			switch {
			case l.esc == 1:
				if c == 'u' {
					l.esc, l.hex = 2, 0
					continue
				}
				l.esc = 0
				if l.add(unescape(c), 1) {
					return l.counting
				}
			case l.esc >= 2:
				l.hex = l.hex<<4 | hexValue(c)
				if l.esc++; l.esc < 6 {
					continue
				}
				l.esc = 0
				if l.addRune(l.hex) {
					return l.counting
				}
			case c == '\\':
				l.esc = 1
			case c == '"':
				l.endString()
			default:
				// A run of plain bytes, up to the next quote or backslash, counts as it is.
				run := bytes.IndexAny(b[i:], `"\`)
				if run < 0 {
					run = len(b) - i
				}
				if l.addRun(b[i : i+run]) {
					return l.counting
				}
				i += run - 1
			}
			continue
		}
		l.structure(c)
	}
	return nil
}

// structure follows one byte outside strings.
func (l *stringLimiter) structure(c byte) {
	switch c {
	case ' ', '\t', '\n', '\r':
		return
	}
	if !l.started {
		l.started = true
		l.object = c == '{'
	}
	top := l.object && l.depth == 1
	switch c {
	case '"':
		l.inString = true
		l.isKey = top && l.expectKey
		if l.isKey {
			l.key, l.keyLong = l.key[:0], false
		} else if top {
			l.counting, l.n = l.pending, 0
		}
		l.pending = nil
	case '{', '[':
		l.depth++
		l.pending = nil
		if l.object && l.depth == 1 {
			l.expectKey = true
		}
	case '}', ']':
		l.depth--
		l.pending = nil
	case ',':
		if top {
			l.expectKey = true
		}
		l.pending = nil
	case ':':
		if top {
			l.expectKey = false
		}
	default:
		l.pending = nil // a number or a literal: not a string value
	}
}

// endString closes the string being read: a member name finds its limit.
func (l *stringLimiter) endString() {
	l.inString = false
	if l.isKey {
		l.isKey = false
		if !l.keyLong {
			for i := range l.limits {
				if string(l.key) == l.limits[i].Member {
					l.pending = &l.limits[i]
					break
				}
			}
		}
	}
	l.counting = nil
}

// add counts one decoded byte c (size 1) of the string being read; addRune a decoded code
// point; addRun bytes passed as they are. Each reports whether a value passed its limit.
func (l *stringLimiter) add(c byte, size int64) bool {
	if l.isKey {
		l.keyByte(c)
		return false
	}
	return l.count(size)
}

func (l *stringLimiter) addRune(r rune) bool {
	if l.isKey {
		if r >= 0xD800 && r <= 0xDFFF {
			l.keyLong = true // half of a pair: no member name the service uses
			return false
		}
		var buf [utf8.UTFMax]byte
		for _, c := range buf[:utf8.EncodeRune(buf[:], r)] {
			l.keyByte(c)
		}
		return false
	}
	if r >= 0xD800 && r <= 0xDFFF {
		// Each half of a pair counts two of the pair's four bytes of UTF-8; a lone half is
		// refused by the decoder.
		return l.count(2)
	}
	return l.count(int64(utf8.RuneLen(r)))
}

func (l *stringLimiter) addRun(run []byte) bool {
	if l.isKey {
		for _, c := range run {
			l.keyByte(c)
		}
		return false
	}
	return l.count(int64(len(run)))
}

func (l *stringLimiter) keyByte(c byte) {
	if len(l.key) == keyCap {
		l.keyLong = true
		return
	}
	l.key = append(l.key, c)
}

func (l *stringLimiter) count(size int64) bool {
	if l.counting == nil {
		return false
	}
	l.n += size
	l.total += size
	return l.n > l.counting.Bytes
}

// unescape is the byte a one-character escape stands for (\n, \", ...).
func unescape(c byte) byte {
	switch c {
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return c // \" \\ \/, and anything the decoder will refuse
}

func hexValue(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return rune(c-'A') + 10
	}
	return 0 // the decoder refuses the escape
}
