package mediahttp

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// The contract reduces a part's file name to its last path element with control characters
// removed, and the file name of a part header is where clients put them raw: Go's own
// multipart.Writer, among others, writes filename="a\x01b.png" as it is. The multipart reader
// parses part headers with net/textproto, which refuses a header holding a control character
// other than a tab, so such an upload was refused whole with 400 before any of its names
// could be cleaned (the same name percent-encoded in filename*= was accepted).
//
// partHeaderFilter removes those bytes from part headers before the multipart reader sees
// them, and passes everything else through unchanged: it follows the body's framing exactly
// as mime/multipart does (the preamble's lines up to the first boundary delimiter line, each
// header block up to its blank line, each part's body up to the next delimiter, which
// mime/multipart recognises by the bytes after "\r\n--boundary" alone, the "\n"-only line
// ends it accepts when the first delimiter line ends so, and the end of the body at the close
// delimiter), and drops bytes only inside header blocks. It keeps no bytes back: each decision
// needs only bytes already passed through, so memory stays a few counters whatever the body's
// size, and the bytes of a part's content reach the reader byte for byte. Wherever the body is
// malformed, mime/multipart fails and the upload is refused whatever the filter did; the
// filter then passes the rest through.

// maxDroppedBytes bounds what the filter removes from one request's part headers. The bytes it
// removes are not counted by the route's body limit (the filter sits below it), so past this
// many it removes nothing more, and net/textproto refuses the header as before (400).
const maxDroppedBytes = 64 << 10

// maxPartHeaderBytes bounds one part's header block, as http.Server.MaxHeaderBytes bounds the
// request's (64 KiB in cmd/server). net/textproto holds a header block whole while it reads
// it, up to mime/multipart's own bound of 10 MB: a part whose header held one line of 9 MiB
// was accepted (201), and 16 such uploads at once took the server from 47 to 359 MB of RSS.
// Past the bound the filter fails the body with errPartHeaderTooLarge.
const maxPartHeaderBytes = 64 << 10

// errPartHeaderTooLarge: a part's header block is longer than maxPartHeaderBytes.
var errPartHeaderTooLarge = errors.New("a part's header block is over the limit")

// filterPartHeaders puts a partHeaderFilter under the body of a multipart/form-data request
// with a boundary; any other request is left as it is, for httpapi.Multipart to refuse (415).
// A compressed body is not filtered either (the upload route refuses it). It returns the
// filter, nil when there is none.
func filterPartHeaders(c *gin.Context) *partHeaderFilter {
	r := c.Request
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	if enc := strings.TrimSpace(r.Header.Get("Content-Encoding")); enc != "" && !strings.EqualFold(enc, "identity") {
		return nil
	}
	mediaType, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/form-data" || params["boundary"] == "" ||
		strings.ContainsAny(params["boundary"], "\r\n") { // never so in a parsed header
		return nil
	}
	f := newPartHeaderFilter(r.Body, params["boundary"])
	r.Body = f
	return f
}

// Err is errPartHeaderTooLarge once a part's header block has passed maxPartHeaderBytes, nil
// before (and for no filter). The multipart reader may report another error first: the bytes
// of the header block let through before the bound end in the middle of a line, which
// net/textproto may find malformed before it reads the filter's error.
func (f *partHeaderFilter) Err() error {
	if f == nil {
		return nil
	}
	return f.err
}

// partHeaderFilter states: where the next byte is, in mime/multipart's reading of the body.
const (
	// inLine: the start of a line of the preamble, k bytes of "--boundary" matched.
	inLine = iota
	// inSkipLine: the rest of a preamble line that is not a delimiter line.
	inSkipLine
	// inDelimiter: after "--boundary" at the start of a line, in the rest of the line (sub).
	inDelimiter
	// inHeader: a part's header block, up to its blank line.
	inHeader
	// inBody: a part's body, up to the delimiter that ends it.
	inBody
	// inPass: after the close delimiter (the epilogue), or where mime/multipart fails.
	inPass
)

// Positions in the rest of a delimiter line (inDelimiter).
const (
	afterBoundary = iota // right after "--boundary"
	afterLWSP            // after spaces or tabs
	afterCR              // after a CR that must be followed by LF
	afterDash            // after "--boundary-"
	afterClose           // after "--boundary--" and any spaces or tabs
	afterCloseCR         // after "--boundary--" and a CR
)

// What the bytes after a possible delimiter in a body have shown (inBody).
const (
	noFollow     = iota
	followPrefix // "--boundary" (at the start of the body) or nl+"--boundary" is complete
	followDash   // ... and is followed by one '-'
)

type partHeaderFilter struct {
	src    io.ReadCloser
	dash   []byte // "--" + boundary
	nlDash []byte // the line end, then "--" + boundary
	lfOnly bool   // lines end in "\n" alone (decided by the first delimiter line)

	state int
	// k is how many bytes of the pattern the state looks for are matched: dash in inLine,
	// nlDash in inBody.
	k int
	// sub is the position in a delimiter line (inDelimiter); follow what follows a complete
	// pattern in a body (inBody).
	sub, follow int
	// afterBody tells a delimiter line that ends a part's body from one of the preamble.
	afterBody bool
	// bodyStart: no byte of the part's body is passed yet, and k0 bytes of dash match its start
	// (mime/multipart also ends an empty body at "--boundary" without the line end before
	// it); k0 < 0 once the body does not start so.
	k0 int
	// lineStart and crAtStart follow the header block's lines, as net/textproto reads them
	// from what the filter lets through: a line that is empty, or a lone CR, ends the block.
	lineStart, crAtStart bool
	dropped              int
	// headerBytes counts the bytes of the header block being read (inHeader); err is
	// errPartHeaderTooLarge once they pass maxPartHeaderBytes, and every Read returns it.
	headerBytes int
	err         error
}

func newPartHeaderFilter(src io.ReadCloser, boundary string) *partHeaderFilter {
	b := []byte("\r\n--" + boundary)
	return &partHeaderFilter{src: src, dash: b[2:], nlDash: b, state: inLine}
}

func (f *partHeaderFilter) Close() error { return f.src.Close() }

// Read reads from the body and removes the header bytes that net/textproto would refuse; it
// reads again when it removed every byte it read, so that it returns 0 bytes only with an
// error (or when the body does).
func (f *partHeaderFilter) Read(p []byte) (int, error) {
	for {
		if f.err != nil {
			return 0, f.err
		}
		if f.state == inPass {
			return f.src.Read(p)
		}
		n, err := f.src.Read(p)
		w := f.filter(p[:n])
		if f.err != nil {
			return w, f.err
		}
		if w > 0 || n == 0 || err != nil {
			return w, err
		}
	}
}

// filter processes b in place and returns how many bytes of it are kept, moved to its front.
func (f *partHeaderFilter) filter(b []byte) int {
	w := 0
	for i := 0; i < len(b); {
		switch {
		case f.state == inPass:
			return w + copy(b[w:], b[i:])
		case f.state == inBody && f.follow == noFollow && f.k == 0 && f.k0 < 0:
			// Nothing can end the body before the next line end's first byte.
			j := bytes.IndexByte(b[i:], f.nlDash[0])
			if j < 0 {
				return w + copy(b[w:], b[i:])
			}
			w += copy(b[w:], b[i:i+j])
			i += j
		case f.state == inSkipLine:
			j := bytes.IndexByte(b[i:], '\n')
			if j < 0 {
				return w + copy(b[w:], b[i:])
			}
			w += copy(b[w:], b[i:i+j+1])
			i += j + 1
			f.state, f.k = inLine, 0
			continue
		}
		c := b[i]
		i++
		if f.step(c) {
			b[w] = c
			w++
		}
		if f.err != nil {
			return w
		}
	}
	return w
}

// droppable reports whether c is a control character that net/textproto refuses in a header
// and that carries no structure: every one but HTAB, LF and CR.
func droppable(c byte) bool {
	return (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f
}

// step moves the state past c and reports whether c is kept.
func (f *partHeaderFilter) step(c byte) bool {
	switch f.state {
	case inLine:
		switch c {
		case f.dash[f.k]:
			f.k++
			if f.k == len(f.dash) {
				f.toDelimiter(false, afterBoundary)
			}
		case '\n': // dash holds no line end
			f.k = 0
		default:
			f.state = inSkipLine
		}
	case inSkipLine:
		if c == '\n' {
			f.state, f.k = inLine, 0
		}
	case inDelimiter:
		f.delimiter(c)
	case inHeader:
		if f.headerBytes++; f.headerBytes > maxPartHeaderBytes {
			f.err = errPartHeaderTooLarge
			return false
		}
		if droppable(c) && f.dropped < maxDroppedBytes {
			f.dropped++
			return false
		}
		switch {
		case c == '\n' && (f.lineStart || f.crAtStart):
			f.state, f.k, f.k0, f.follow = inBody, 0, 0, noFollow
		case c == '\n':
			f.lineStart, f.crAtStart = true, false
		case c == '\r' && f.lineStart:
			f.lineStart, f.crAtStart = false, true
		default:
			f.lineStart, f.crAtStart = false, false
		}
	case inBody:
		f.body(c)
	}
	return true
}

// body follows a part's body as mime/multipart's scanUntilBoundary does: the body ends where
// nl+"--boundary" (or, at its very start, "--boundary") is followed by a space, a tab, CR, LF
// or "--"; followed by anything else, those bytes are content and the search goes on after
// them.
func (f *partHeaderFilter) body(c byte) {
	switch f.follow {
	case followPrefix:
		switch c {
		case ' ', '\t':
			f.toDelimiter(true, afterLWSP)
		case '\r':
			f.toDelimiter(true, afterCR)
		case '\n':
			f.toDelimiter(true, afterBoundary)
			f.delimiter(c)
		case '-':
			f.follow = followDash
		default:
			f.follow, f.k, f.k0 = noFollow, 0, -1
			f.body(c)
		}
		return
	case followDash:
		if c == '-' {
			f.toDelimiter(true, afterClose)
			return
		}
		f.follow, f.k, f.k0 = noFollow, 0, -1
		f.body(c)
		return
	}
	if f.k0 >= 0 {
		if c == f.dash[f.k0] {
			f.k0++
			if f.k0 == len(f.dash) {
				f.follow = followPrefix
			}
			return
		}
		f.k0 = -1 // dash holds no byte of a line end: k is 0 here
	}
	switch c {
	case f.nlDash[f.k]:
		f.k++
		if f.k == len(f.nlDash) {
			f.follow = followPrefix
		}
	case f.nlDash[0]:
		f.k = 1
	default:
		f.k = 0
	}
}

func (f *partHeaderFilter) toDelimiter(afterBody bool, sub int) {
	f.state, f.afterBody, f.sub = inDelimiter, afterBody, sub
}

// delimiter reads the rest of a line that starts with "--boundary" as mime/multipart's
// isBoundaryDelimiterLine and isFinalBoundary do: spaces or tabs, then the line end, start a
// part's header block; "--", spaces or tabs, then the line end, end the body. The first
// delimiter line of the body decides whether lines end in CRLF or in LF alone.
func (f *partHeaderFilter) delimiter(c byte) {
	lf := func(closing bool) {
		switch {
		case !f.afterBody && !closing:
			// The first delimiter line ends in LF alone: so do the body's lines from now on.
			f.lfOnly, f.nlDash = true, f.nlDash[1:]
			f.toHeader()
		case f.lfOnly && closing:
			f.state = inPass
		case f.lfOnly:
			f.toHeader()
		default:
			f.notDelimiter(c)
		}
	}
	crlf := func(closing bool) {
		switch {
		case f.lfOnly:
			f.notDelimiter(c)
		case closing:
			f.state = inPass
		default:
			f.toHeader()
		}
	}
	switch f.sub {
	case afterBoundary, afterLWSP:
		switch {
		case c == ' ' || c == '\t':
			f.sub = afterLWSP
		case c == '\r':
			f.sub = afterCR
		case c == '\n':
			lf(false)
		case c == '-' && f.sub == afterBoundary:
			f.sub = afterDash
		default:
			f.notDelimiter(c)
		}
	case afterCR:
		if c == '\n' {
			crlf(false)
			return
		}
		f.notDelimiter(c)
	case afterDash:
		if c == '-' {
			f.sub = afterClose
			return
		}
		f.notDelimiter(c)
	case afterClose:
		switch c {
		case ' ', '\t':
		case '\r':
			f.sub = afterCloseCR
		case '\n':
			lf(true)
		default:
			f.notDelimiter(c)
		}
	case afterCloseCR:
		if c == '\n' {
			crlf(true)
			return
		}
		f.notDelimiter(c)
	}
}

func (f *partHeaderFilter) toHeader() {
	f.state, f.lineStart, f.crAtStart, f.headerBytes = inHeader, true, false, 0
}

// notDelimiter: the line that started with "--boundary" is not a delimiter line after all.
// In the preamble it is skipped like any other line; after a body, mime/multipart fails.
func (f *partHeaderFilter) notDelimiter(c byte) {
	switch {
	case f.afterBody:
		f.state = inPass
	case c == '\n':
		f.state, f.k = inLine, 0
	default:
		f.state = inSkipLine
	}
}
