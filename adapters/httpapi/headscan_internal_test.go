package httpapi

import (
	"fmt"
	"strings"
	"testing"
)

// TestHeadScanIsTheSameHoweverTheHeadIsSplit: the connection reads a head in pieces of any
// size, so headScan must find the same X-Request-ID and framing whichever way the bytes are
// cut: whole, at every point in two, and one byte at a time.
func TestHeadScanIsTheSameHoweverTheHeadIsSplit(t *testing.T) {
	heads := []struct {
		head       string
		id         string // "" when none is kept
		length, te bool
	}{
		{"GET /x HTTP/1.1\r\nHost: x\r\nX-Request-ID:  abc-1 \r\n\r\n", "abc-1", false, false},
		{"POST /x HTTP/1.1\r\nContent-Length: 4\r\nx-request-id:first\r\nX-Request-Id: second\r\nTransfer-Encoding: chunked\r\n\r\n", "first", true, true},
		{"GET /a:b HTTP/1.1\r\nX-Request-ID-Other: no\r\nXX-Request-ID: no\r\nTransfer-Encodings: no\r\n\r\n", "", false, false},
		{"GET /" + strings.Repeat("p", 5000) + " HTTP/1.1\r\nContent-Length:0\r\n\r\n", "", true, false},
		{"GET /x HTTP/1.1\nX-Request-ID: lf-only\n\n", "lf-only", false, false},
		// What follows the blank line is a body, not headers.
		{"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n--b\r\nContent-Length: 3\r\nX-Request-ID: body\r\n", "", false, true},
		{"POST /x HTTP/1.1\nHost: x\n\nContent-Length: 3\nTransfer-Encoding: chunked\n", "", false, false},
	}
	for _, h := range heads {
		check := func(how string, s *headScan) {
			t.Helper()
			id := strings.TrimSpace(string(s.value))
			if !s.idDone {
				id = ""
			}
			if id != h.id || s.contentLength != h.length || s.transferEncoding != h.te {
				t.Fatalf("%s of %.60q: id %q, Content-Length %t, Transfer-Encoding %t; want %q, %t, %t",
					how, h.head, id, s.contentLength, s.transferEncoding, h.id, h.length, h.te)
			}
		}
		var whole headScan
		whole.feed([]byte(h.head))
		check("whole", &whole)
		for cut := 1; cut < len(h.head); cut++ {
			var s headScan
			s.feed([]byte(h.head[:cut]))
			s.feed([]byte(h.head[cut:]))
			check(fmt.Sprintf("cut at %d", cut), &s)
		}
		var bytewise headScan
		for i := range len(h.head) {
			bytewise.feed([]byte{h.head[i]})
		}
		check("byte by byte", &bytewise)
	}
}
