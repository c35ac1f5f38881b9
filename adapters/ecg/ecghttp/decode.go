package ecghttp

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"sync"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/ecg/ecg"
	ecgport "github.com/acme/postsvc/ports/ecg"
)

// The upload decoder. An ECG body is mostly integers (a 12-lead, 5,000-sample recording is
// 60,000 of them in 265 KB), so it is read by a scanner of its own rather than by a JSON
// library into structs: the body streams through a 64 KiB buffer, each sample goes straight
// to an ecg.SignalWriter, and nothing per sample is allocated. It keeps the service's JSON
// rules (those of httpapi.decodeJSON):
//
//   - malformed JSON, a value of the wrong JSON type for a known member (null included),
//     invalid UTF-8 or a lone surrogate escape in any string, a member named twice in any
//     object, nesting deeper than maxDepth, and anything but whitespace after the object are
//     400 (malformedError);
//   - unknown members are skipped, after being checked like the rest;
//   - a well-formed value the ECG cannot hold is 422 (*domain.ValidationError): a sample that
//     is not an integer or outside int32, a 17th lead, a 1,000,001st sample, a declared sample
//     count outside 0 to 1,000,000, and an id, date or lead name longer than its bound, which
//     is refused as soon as the bound is passed, without reading the rest of the string;
//   - an error reading the body (the route's size limit, the read timeout, gzip) is returned
//     wrapped, unchanged, for httpapi.BodyError.
//
// Decoding stops at the first error in the order of the body. Everything else about the
// values (the id's characters, the date, names, counts) is ecg.New's to check.

// Bounds of the decoder.
const (
	// readBufferBytes is the read buffer.
	readBufferBytes = 64 << 10
	// numberWindow is how far ahead of a sample the buffer is kept filled, so that the fast
	// path finds a whole sample and the byte after it; longer numbers take the slow path.
	numberWindow = 32
	// maxDepth bounds the nesting of arrays and objects, the body's object counting as 1.
	maxDepth = 64
	// maxIDBytes, maxDateBytes and maxLeadNameBytes bound the strings the decoder keeps
	// (decoded, in bytes). An id is at most 64 ASCII characters and a name at most 16
	// characters (64 bytes of UTF-8), so neither can be valid beyond; a date with
	// microseconds and an offset is 32 bytes, so 64 only refuses padding (time.Parse would
	// take any number of fractional zeros).
	maxIDBytes       = ecg.MaxIDBytes
	maxDateBytes     = 64
	maxLeadNameBytes = 4 * ecg.MaxLeadNameChars
	// maxKeyBytes: a member name up to this long is compared for duplicates as is, a longer
	// one by its SHA-256, so that a huge unknown name is never held.
	maxKeyBytes = 64
	// maxListedNames: an object's names are compared by a linear search up to this many, by a
	// map beyond.
	maxListedNames = 16
	// maxMembers bounds the members of one object. An ECG's own objects have three or four;
	// the bound is for unknown members, whose names must be kept to find a name given twice:
	// without it, a 64 MiB object of millions of short names would take several times the
	// body in memory, on every concurrent upload.
	maxMembers = 1024
	// maxEmptyReads is how many reads returning nothing are tolerated in a row.
	maxEmptyReads = 100
	// maxKeptArena: a pooled decoder drops a names arena grown beyond this.
	maxKeptArena = 1 << 20
)

// malformedError is a body that is not the JSON an ECG upload must be: answered 400
// malformed_request with detail, which names the field where it can and never echoes more of
// the body than a character.
type malformedError struct{ detail string }

func (e *malformedError) Error() string { return e.detail }

func malformed(format string, args ...any) error {
	return &malformedError{detail: fmt.Sprintf(format, args...)}
}

var (
	errEmpty     = &malformedError{detail: "The request body is empty; a JSON object is required."}
	errTruncated = &malformedError{detail: "The request body ends before its JSON object is complete."}
	errNotObject = &malformedError{detail: "The request body must be a JSON object."}
	// errBOM and errUTF16 name the usual reasons a body does not start with "{": a UTF-8
	// byte order mark (in the kernel decoder's words) and UTF-16, which the kernel's decoder
	// refuses as invalid UTF-8 too.
	errBOM      = &malformedError{detail: httpapi.BOMDetail}
	errUTF16    = &malformedError{detail: "The request body must be valid UTF-8."}
	errTrailing = &malformedError{detail: "The request body must hold a single JSON object and nothing after it."}
	// errTooLong is returned by str when a kept string passes its bound; the caller turns it
	// into the field's validation error.
	errTooLong = errors.New("ecghttp: string too long")
)

// decodeECG reads one ECG document from r (already limited to the route's body limit and
// decompressed by the HTTP kernel), packs every lead's samples into blocks written to sink as
// they are read (through ecg.SignalWriter), and returns the draft (id, date, lead names,
// declared samples, ecg.Signal summaries). It never holds a whole signal in memory.
//
// Its errors are a *malformedError (400), a *domain.ValidationError (422), what sink.Put
// returned, what sink's WatchID returned when it is an ecgport.IDWatcher (told the id as
// soon as it is read: the rest of the body is then not read), or an error of r wrapped with %w.
func decodeECG(r io.Reader, sink ecg.BlockSink) (ecg.Draft, error) {
	d := getDecoder(r, sink)
	defer putDecoder(d)
	return d.document()
}

// decoder is the state of one decodeECG; decoders are pooled with their buffers.
type decoder struct {
	r    io.Reader
	buf  []byte
	pos  int   // next byte to read in buf
	end  int   // end of the bytes read into buf
	off  int64 // offset in the body of buf[0]
	eof  bool
	rerr error // a failed read, returned once the bytes before it are used up

	sink   ecg.BlockSink
	w      *ecg.SignalWriter
	name   string        // the name of the lead being read, as far as known
	nameFn func() string // returns name, for the SignalWriter's errors

	depth int    // containers open
	kinds []byte // '{' or '[' of each container open in a skipped value
	names nameStack

	text    []byte    // the string last read by str (in key mode, tagged: see str)
	hashing bool      // str is hashing a long member name into long
	long    hash.Hash // SHA-256 of a long member name
	scratch [utf8.UTFMax]byte

	vals *draftValues
}

// draftValues hold what a draft points to, in one allocation per document.
type draftValues struct {
	date    string
	names   [ecg.MaxLeads]string
	samples [ecg.MaxLeads]int64
}

var decoders = sync.Pool{New: func() any { return newDecoder() }}

func newDecoder() *decoder {
	d := &decoder{buf: make([]byte, readBufferBytes)}
	d.nameFn = d.leadName
	return d
}

func getDecoder(r io.Reader, sink ecg.BlockSink) *decoder {
	d, ok := decoders.Get().(*decoder)
	if !ok {
		d = newDecoder()
	}
	d.start(r, sink)
	return d
}

func putDecoder(d *decoder) {
	d.finish()
	decoders.Put(d)
}

// start readies d, new or used, to decode r into sink.
func (d *decoder) start(r io.Reader, sink ecg.BlockSink) {
	d.r, d.sink = r, sink
	d.pos, d.end, d.off, d.eof, d.rerr = 0, 0, 0, false, nil
	d.name, d.depth, d.kinds, d.vals = "", 0, d.kinds[:0], nil
	d.names.reset()
}

// finish drops d's references to the document, keeping its buffers for the next one.
func (d *decoder) finish() {
	d.r, d.sink, d.rerr, d.vals, d.name = nil, nil, nil, nil, ""
	if d.w != nil {
		d.w = ecg.NewSignalWriter(d.w, nil, 0, nil) // drops its references to the sink
	}
	d.names.reset()
	if cap(d.names.arena) > maxKeptArena {
		d.names.arena = nil
	}
}

func (d *decoder) leadName() string { return d.name }

// Reading.

// fill reads more of the body, moving the unread bytes to the front of the buffer first. At
// the end of the body it sets eof; a failed read is kept in rerr. Once either is set it does
// nothing.
func (d *decoder) fill() {
	if d.eof || d.rerr != nil {
		return
	}
	if d.pos > 0 {
		d.end = copy(d.buf, d.buf[d.pos:d.end])
		d.off += int64(d.pos)
		d.pos = 0
	}
	for range maxEmptyReads {
		if d.end == len(d.buf) {
			return
		}
		n, err := d.r.Read(d.buf[d.end:])
		d.end += n
		if err != nil {
			if errors.Is(err, io.EOF) {
				d.eof = true
			} else {
				d.rerr = fmt.Errorf("ecghttp: reading the ECG body: %w", err)
			}
			return
		}
		if n > 0 {
			return
		}
	}
	d.rerr = fmt.Errorf("ecghttp: reading the ECG body: %w", io.ErrNoProgress)
}

// want tries to have k bytes at pos (k at most numberWindow) and reports whether it has.
func (d *decoder) want(k int) bool {
	for d.end-d.pos < k {
		if d.eof || d.rerr != nil {
			return false
		}
		d.fill()
	}
	return true
}

// short is the error of a value that needs bytes the body does not have: the read error
// that cut it short, or a truncated body.
func (d *decoder) short() error {
	if d.rerr != nil {
		return d.rerr
	}
	return errTruncated
}

// space skips whitespace and reports whether a byte follows (false at the end of the body
// or on a read error).
func (d *decoder) space() bool {
	for {
		for d.pos < d.end {
			switch d.buf[d.pos] {
			case ' ', '\t', '\n', '\r':
				d.pos++
			default:
				return true
			}
		}
		d.fill()
		if d.pos == d.end {
			return false
		}
	}
}

// peek skips whitespace and returns the next byte, without consuming it.
func (d *decoder) peek() (byte, error) {
	if !d.space() {
		return 0, d.short()
	}
	return d.buf[d.pos], nil
}

// at is the position of the next byte in the body, for error details.
func (d *decoder) at() int64 { return d.off + int64(d.pos) }

// syntax is a malformed error at the current position.
func (d *decoder) syntax(format string, args ...any) error {
	return malformed("The request body is not valid JSON (at byte %d): %s.", d.at(), fmt.Sprintf(format, args...))
}

// unexpected is the error of the byte c at the current position.
func (d *decoder) unexpected(c byte, expecting string) error {
	return d.syntax("unexpected %s (expecting %s)", describe(c), expecting)
}

// describe names a byte without echoing more than a character.
func describe(c byte) string {
	if c >= ' ' && c < utf8.RuneSelf {
		return "character " + strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// The document.

func (d *decoder) document() (ecg.Draft, error) {
	var draft ecg.Draft
	if !d.space() {
		if d.rerr != nil {
			return draft, d.rerr
		}
		return draft, errEmpty
	}
	if d.buf[d.pos] != '{' {
		d.want(3) // the longest mark; fewer bytes when the body is shorter
		switch rest := d.buf[d.pos:d.end]; {
		case len(rest) >= 3 && rest[0] == 0xef && rest[1] == 0xbb && rest[2] == 0xbf:
			return draft, errBOM
		case len(rest) >= 2 && (rest[0] == 0xff && rest[1] == 0xfe || rest[0] == 0xfe && rest[1] == 0xff):
			return draft, errUTF16
		}
		if d.rerr != nil {
			return draft, d.rerr
		}
		return draft, errNotObject
	}
	d.openObject()
	for first := true; ; first = false {
		key, ok, err := d.member(first, -1)
		if err != nil {
			return ecg.Draft{}, err
		}
		if !ok {
			break
		}
		switch key {
		case "id":
			s, err := d.knownString(-1, "id", maxIDBytes, "must be 1 to 64 characters")
			if err != nil {
				return ecg.Draft{}, err
			}
			draft.ID, draft.IDSent = s, true
			if w, ok := d.sink.(ecgport.IDWatcher); ok {
				if err := w.WatchID(s); err != nil {
					return ecg.Draft{}, err
				}
			}
		case "date":
			s, err := d.knownString(-1, "date", maxDateBytes,
				"must be an RFC 3339 date and time of at most 64 characters, such as 2024-05-01T09:30:00Z")
			if err != nil {
				return ecg.Draft{}, err
			}
			v := d.values()
			v.date = s
			draft.Date = &v.date
		case "leads":
			c, err := d.peek()
			if err != nil {
				return ecg.Draft{}, err
			}
			if c != '[' {
				return ecg.Draft{}, d.typeError("leads", "an array", c)
			}
			if draft.Leads, err = d.leads(); err != nil {
				return ecg.Draft{}, err
			}
		default:
			if err := d.skipValue(); err != nil {
				return ecg.Draft{}, err
			}
		}
	}
	if d.space() {
		return ecg.Draft{}, errTrailing
	}
	if d.rerr != nil {
		return ecg.Draft{}, d.rerr
	}
	return draft, nil
}

func (d *decoder) values() *draftValues {
	if d.vals == nil {
		d.vals = new(draftValues)
	}
	return d.vals
}

// knownString reads the string value of the known member field (of lead, or of the body's
// object when lead is -1), of at most limit bytes; a longer one is the field's validation
// error, problem.
func (d *decoder) knownString(lead int, field string, limit int, problem string) (string, error) {
	if err := d.knownText(lead, field, limit, problem); err != nil {
		return "", err
	}
	return string(d.text), nil
}

// knownText is knownString leaving the string in d.text.
func (d *decoder) knownText(lead int, field string, limit int, problem string) error {
	c, err := d.peek()
	if err != nil {
		return err
	}
	if c != '"' {
		return d.typeError(fieldName(lead, field), "a string", c)
	}
	if err := d.str(strValue, limit); err != nil {
		if errors.Is(err, errTooLong) {
			return domain.Invalid(fieldName(lead, field), problem)
		}
		return err
	}
	return nil
}

// leadNameString makes a lead's name a string, without allocating for the usual names.
func leadNameString(b []byte) string {
	switch string(b) {
	case "I":
		return "I"
	case "II":
		return "II"
	case "III":
		return "III"
	case "aVR":
		return "aVR"
	case "aVL":
		return "aVL"
	case "aVF":
		return "aVF"
	case "V1":
		return "V1"
	case "V2":
		return "V2"
	case "V3":
		return "V3"
	case "V4":
		return "V4"
	case "V5":
		return "V5"
	case "V6":
		return "V6"
	}
	return string(b)
}

// leads reads the leads array; pos is at its '['.
func (d *decoder) leads() ([]ecg.LeadDraft, error) {
	d.pos++
	d.depth++
	leads := []ecg.LeadDraft{}
	c, err := d.peek()
	if err != nil {
		return nil, err
	}
	if c == ']' {
		d.pos++
		d.depth--
		return leads, nil
	}
	for i := 0; ; i++ {
		if i == ecg.MaxLeads {
			return nil, ecg.TooManyLeads()
		}
		if c != '{' {
			return nil, d.typeError("leads["+strconv.Itoa(i)+"]", "an object", c)
		}
		if i == 0 {
			leads = make([]ecg.LeadDraft, 0, ecg.MaxLeads)
		}
		lead, err := d.lead(i)
		if err != nil {
			return nil, err
		}
		leads = append(leads, lead)
		if c, err = d.peek(); err != nil {
			return nil, err
		}
		switch c {
		case ',':
			d.pos++
			if c, err = d.peek(); err != nil {
				return nil, err
			}
			if c == ']' {
				return nil, d.unexpected(c, "a lead after ','")
			}
		case ']':
			d.pos++
			d.depth--
			return leads, nil
		default:
			return nil, d.unexpected(c, "',' or ']' after a lead")
		}
	}
}

// lead reads the lead at position i; pos is at its '{'.
func (d *decoder) lead(i int) (ecg.LeadDraft, error) {
	var l ecg.LeadDraft
	d.name = ""
	d.openObject()
	for first := true; ; first = false {
		key, ok, err := d.member(first, i)
		if err != nil {
			return l, err
		}
		if !ok {
			return l, nil
		}
		switch key {
		case "name":
			if err := d.knownText(i, "name", maxLeadNameBytes, "must be 1 to 16 characters"); err != nil {
				return l, err
			}
			v := d.values()
			v.names[i] = leadNameString(d.text)
			l.Name = &v.names[i]
			d.name = v.names[i]
		case "samples":
			n, err := d.declaredSamples(i)
			if err != nil {
				return l, err
			}
			v := d.values()
			v.samples[i] = n
			l.Samples = &v.samples[i]
		case "signal":
			c, err := d.peek()
			if err != nil {
				return l, err
			}
			if c != '[' {
				return l, d.typeError(ecg.LeadField(i, "signal"), "an array", c)
			}
			if l.Signal, err = d.signal(i); err != nil {
				return l, err
			}
			l.SignalSent = true
		default:
			if err := d.skipValue(); err != nil {
				return l, err
			}
		}
	}
}

// declaredSamples reads the "samples" member of lead i.
func (d *decoder) declaredSamples(i int) (int64, error) {
	c, err := d.peek()
	if err != nil {
		return 0, err
	}
	if c != '-' && !isDigit(c) {
		return 0, d.typeError(ecg.LeadField(i, "samples"), "an integer", c)
	}
	n, integer, err := d.number()
	if err != nil {
		return 0, err
	}
	if !integer || n < 0 || n > ecg.MaxSamples {
		return 0, domain.Invalid(ecg.LeadField(i, "samples"), "must be an integer from 1 to 1000000")
	}
	return n, nil
}

// signal reads the samples of lead i into the decoder's SignalWriter; pos is at the '['.
// Runs of samples that the buffer holds whole are read by fastRun; what it leaves (a sample
// it does not take, the separator after a sample not followed by a comma) is read here.
func (d *decoder) signal(lead int) (ecg.Signal, error) {
	d.pos++
	d.depth++
	w := ecg.NewSignalWriter(d.w, d.sink, lead, d.nameFn)
	d.w = w
	c, err := d.peek()
	if err != nil {
		return ecg.Signal{}, err
	}
	if c == ']' {
		d.pos++
		d.depth--
		return w.Close()
	}
	index := 0
	for {
		// pos is at a sample, or whitespace before it.
		if d.end-d.pos <= numberWindow {
			d.fill()
		}
		n, stop, err := d.fastRun(w)
		index += n
		if err != nil {
			return ecg.Signal{}, err
		}
		switch stop {
		case runFill:
			continue
		case runSlow:
			v, err := d.sample(lead, index)
			if err != nil {
				return ecg.Signal{}, err
			}
			if err := w.Add(v); err != nil {
				return ecg.Signal{}, err
			}
			index++
		}
		// pos is after a sample.
		if c, err = d.peek(); err != nil {
			return ecg.Signal{}, err
		}
		switch c {
		case ',':
			d.pos++
			if c, err = d.peek(); err != nil {
				return ecg.Signal{}, err
			}
			if c == ']' {
				return ecg.Signal{}, d.unexpected(c, "a sample after ','")
			}
		case ']':
			d.pos++
			d.depth--
			return w.Close()
		default:
			return ecg.Signal{}, d.unexpected(c, "',' or ']' after a sample")
		}
	}
}

// Where fastRun stops.
const (
	// runFill: pos is at a sample (or whitespace before it) too near the end of the buffer.
	runFill = iota
	// runSlow: pos is at a sample (whitespace skipped) that fastRun does not read: not a
	// short integer followed by a separator, or one the end of the body cuts.
	runSlow
	// runAfter: pos is after a sample, at something else than a comma.
	runAfter
)

// fastRun reads samples from pos while they are short integers (at most 18 digits, so that
// they fit an int64 as read) each followed by a comma, a bracket or whitespace, and start
// more than numberWindow bytes before the end of the buffer (or anywhere, at the end of the
// body). It works on locals, for speed: this is where the time goes. It returns how many
// samples it added and why it stopped.
func (d *decoder) fastRun(w *ecg.SignalWriter) (n, stop int, err error) {
	buf, p := d.buf[:d.end], d.pos
	limit := len(buf) - numberWindow
	noMore := d.eof || d.rerr != nil // the buffer holds all there is to read
	if noMore {
		limit = len(buf)
	}
	for p < limit {
		c := buf[p]
		if c <= ' ' {
			if c == ' ' || c == '\n' || c == '\r' || c == '\t' {
				p++
				continue
			}
			break
		}
		q := p
		if c == '-' {
			q++
		}
		start := q
		var u uint64
		for q < len(buf) {
			digit := buf[q] - '0'
			if digit > 9 {
				break
			}
			u = u*10 + uint64(digit)
			q++
		}
		digits := q - start
		if digits == 0 || digits > 18 || q == len(buf) || digits > 1 && buf[start] == '0' {
			break
		}
		t := buf[q]
		if t != ',' && t != ']' && t != ' ' && t != '\n' && t != '\r' && t != '\t' {
			break
		}
		v := int64(u)
		if c == '-' {
			v = -v
		}
		if err := w.Add(v); err != nil {
			d.pos = q
			return n, 0, err
		}
		n++
		if t != ',' {
			d.pos = q
			return n, runAfter, nil
		}
		p = q + 1
	}
	d.pos = p
	if p < limit || noMore {
		return n, runSlow, nil
	}
	return n, runFill, nil
}

// sample reads the sample at index of lead the slow way; pos is at its first byte.
func (d *decoder) sample(lead, index int) (int64, error) {
	c, err := d.peek()
	if err != nil {
		return 0, err
	}
	if c == ']' {
		return 0, d.unexpected(c, "a sample after ','")
	}
	if c != '-' && !isDigit(c) {
		return 0, d.typeError(ecg.LeadField(lead, "signal["+strconv.Itoa(index)+"]"), "an integer", c)
	}
	v, integer, err := d.number()
	if err != nil {
		return 0, err
	}
	if !integer {
		return 0, ecg.SampleError(lead, d.name, index, "must be an integer")
	}
	return v, nil
}

// fieldName names field of lead, or of the body's object when lead is -1.
func fieldName(lead int, field string) string {
	if lead < 0 {
		return field
	}
	return ecg.LeadField(lead, field)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// cur returns the byte at pos, reading more when needed; false at the end of the body or
// on a read error.
func (d *decoder) cur() (byte, bool) {
	if d.pos < d.end {
		return d.buf[d.pos], true
	}
	d.fill()
	if d.pos < d.end {
		return d.buf[d.pos], true
	}
	return 0, false
}

// number reads a number strictly per RFC 8259 (-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?)
// as a stream, however long it is. integer reports an integer in lexical form (no fraction,
// no exponent), whose value is v; beyond 18 digits v is ±2^62, which is outside every bound
// the decoder checks.
func (d *decoder) number() (v int64, integer bool, err error) {
	neg := false
	c, ok := d.cur()
	if ok && c == '-' {
		neg = true
		d.pos++
		c, ok = d.cur()
	}
	if !ok {
		return 0, false, d.short()
	}
	var u uint64
	digits := 0
	switch {
	case c == '0':
		d.pos++
		digits = 1
	case c >= '1' && c <= '9':
		for ok && isDigit(c) {
			if digits < 18 {
				u = u*10 + uint64(c-'0')
			}
			digits++
			d.pos++
			c, ok = d.cur()
		}
	default:
		return 0, false, d.unexpected(c, "a digit in a number")
	}
	integer = true
	c, ok = d.cur()
	if ok && c == '.' {
		integer = false
		d.pos++
		if err := d.digits(); err != nil {
			return 0, false, err
		}
		c, ok = d.cur()
	}
	if ok && (c == 'e' || c == 'E') {
		integer = false
		d.pos++
		if c, ok = d.cur(); ok && (c == '+' || c == '-') {
			d.pos++
		}
		if err := d.digits(); err != nil {
			return 0, false, err
		}
		_, ok = d.cur()
	}
	if !ok && d.rerr != nil {
		return 0, false, d.rerr
	}
	if digits > 18 {
		u = 1 << 62
	}
	v = int64(u)
	if neg {
		v = -v
	}
	return v, integer, nil
}

// digits reads one or more digits.
func (d *decoder) digits() error {
	c, ok := d.cur()
	if !ok {
		return d.short()
	}
	if !isDigit(c) {
		return d.unexpected(c, "a digit in a number")
	}
	for ok && isDigit(c) {
		d.pos++
		c, ok = d.cur()
	}
	return nil
}

// literal reads true, false or null, whose first byte is at pos.
func (d *decoder) literal(word string) error {
	d.want(len(word))
	avail := d.buf[d.pos:d.end]
	for i := range len(word) {
		if i == len(avail) {
			return d.short()
		}
		if avail[i] != word[i] {
			d.pos += i
			return d.unexpected(avail[i], "the literal "+word)
		}
	}
	d.pos += len(word)
	return nil
}

// typeError is the error of a known member whose value, starting with c, is not of the JSON
// type want. A scalar is read first, so that a malformed one is reported as such.
func (d *decoder) typeError(field, want string, c byte) error {
	var got string
	switch c {
	case '"':
		got = "a string"
	case '{':
		got = "an object"
	case '[':
		got = "an array"
	case 't', 'f', 'n':
		word, kind := "null", "null"
		switch c {
		case 't':
			word, kind = "true", "a boolean"
		case 'f':
			word, kind = "false", "a boolean"
		}
		if err := d.literal(word); err != nil {
			return err
		}
		got = kind
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		if _, _, err := d.number(); err != nil {
			return err
		}
		got = "a number"
	default:
		return d.unexpected(c, "a value")
	}
	return malformed("Field %q must be %s, not %s.", field, want, got)
}

// Objects.

func (d *decoder) openObject() {
	d.pos++
	d.depth++
	d.names.push()
}

func (d *decoder) closeObject() {
	d.pos++
	d.depth--
	d.names.pop()
}

// member moves to the next member of the object being read (lead is its lead's position,
// -1 for the body's object) and returns its name when the decoder knows it, "" otherwise,
// with pos at its value. At the object's closing brace it returns ok false.
func (d *decoder) member(first bool, lead int) (key string, ok bool, err error) {
	c, err := d.peek()
	if err != nil {
		return "", false, err
	}
	if !first {
		switch c {
		case ',':
			d.pos++
			if c, err = d.peek(); err != nil {
				return "", false, err
			}
			if c != '"' {
				return "", false, d.unexpected(c, "a member name after ','")
			}
		case '}':
			d.closeObject()
			return "", false, nil
		default:
			return "", false, d.unexpected(c, "',' or '}' after an object member")
		}
	}
	switch c {
	case '"':
	case '}':
		d.closeObject()
		return "", false, nil
	default:
		return "", false, d.unexpected(c, "a member name")
	}
	at := d.at()
	dup, err := d.key()
	if err != nil {
		return "", false, err
	}
	key = knownKey(d.text, lead >= 0)
	if dup {
		if key != "" {
			field := key
			if lead >= 0 {
				field = ecg.LeadField(lead, key)
			}
			return "", false, malformed("Field %q appears more than once.", field)
		}
		return "", false, malformed("The request body names a member more than once in one object (at byte %d).", at)
	}
	return key, true, nil
}

// key reads a member name at pos and the colon after it, and records the name in the
// innermost object's names; dup reports a name the object already had.
func (d *decoder) key() (dup bool, err error) {
	if err := d.str(strKey, maxKeyBytes); err != nil {
		return false, err
	}
	if d.names.members() >= maxMembers {
		return false, malformed("An object in the request body has more than %d members; this API takes no such object.", maxMembers)
	}
	dup = !d.names.add(d.text)
	c, err := d.peek()
	if err != nil {
		return false, err
	}
	if c != ':' {
		return false, d.unexpected(c, "':' after a member name")
	}
	d.pos++
	return dup, nil
}

// knownKey returns the name of a member the decoder reads, from str's tagged key; "" for
// any other.
func knownKey(tagged []byte, inLead bool) string {
	if len(tagged) == 0 || tagged[0] != keyVerbatim {
		return ""
	}
	if inLead {
		switch string(tagged[1:]) {
		case "name":
			return "name"
		case "samples":
			return "samples"
		case "signal":
			return "signal"
		}
		return ""
	}
	switch string(tagged[1:]) {
	case "id":
		return "id"
	case "date":
		return "date"
	case "leads":
		return "leads"
	}
	return ""
}

// skipValue reads a value of an unknown member, checking it like the rest of the body
// (grammar, UTF-8, names, depth) without keeping it.
func (d *decoder) skipValue() error {
	floor := len(d.kinds)
	c, err := d.peek()
	if err != nil {
		return err
	}
	for {
		// pos is at a value's first byte, c.
		switch c {
		case '{', '[':
			if d.depth >= maxDepth {
				return malformed("The request body nests arrays and objects more than %d deep (at byte %d).", maxDepth, d.at())
			}
			d.pos++
			d.depth++
			d.kinds = append(d.kinds, c)
			if c == '{' {
				d.names.push()
			}
			if c, err = d.peek(); err != nil {
				return err
			}
			if c == '}' && d.kinds[len(d.kinds)-1] == '{' || c == ']' && d.kinds[len(d.kinds)-1] == '[' {
				d.closeSkipped()
				break
			}
			if d.kinds[len(d.kinds)-1] == '{' {
				if c, err = d.skippedKey(c); err != nil {
					return err
				}
			}
			continue
		case '"':
			err = d.str(strSkip, 0)
		case 't':
			err = d.literal("true")
		case 'f':
			err = d.literal("false")
		case 'n':
			err = d.literal("null")
		case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			_, _, err = d.number()
		default:
			return d.unexpected(c, "a value")
		}
		if err != nil {
			return err
		}
		// After a value: close the containers it ends, or move to the next value.
		for {
			if len(d.kinds) == floor {
				return nil
			}
			if c, err = d.peek(); err != nil {
				return err
			}
			kind := d.kinds[len(d.kinds)-1]
			if c == '}' && kind == '{' || c == ']' && kind == '[' {
				d.closeSkipped()
				continue
			}
			if c != ',' {
				if kind == '{' {
					return d.unexpected(c, "',' or '}' after an object member")
				}
				return d.unexpected(c, "',' or ']' after an array element")
			}
			d.pos++
			if c, err = d.peek(); err != nil {
				return err
			}
			if kind == '{' {
				if c, err = d.skippedKey(c); err != nil {
					return err
				}
			}
			break
		}
	}
}

// closeSkipped reads the closing brace or bracket, at pos, of the innermost container of a
// skipped value.
func (d *decoder) closeSkipped() {
	d.pos++
	d.depth--
	if d.kinds[len(d.kinds)-1] == '{' {
		d.names.pop()
	}
	d.kinds = d.kinds[:len(d.kinds)-1]
}

// skippedKey reads a member name (its first byte c) in a skipped object and returns the
// first byte of its value.
func (d *decoder) skippedKey(c byte) (byte, error) {
	if c != '"' {
		return 0, d.unexpected(c, "a member name")
	}
	at := d.at()
	dup, err := d.key()
	if err != nil {
		return 0, err
	}
	if dup {
		return 0, malformed("The request body names a member more than once in one object (at byte %d).", at)
	}
	return d.peek()
}

// Strings.

type strMode uint8

const (
	// strSkip checks a string without keeping it.
	strSkip strMode = iota
	// strValue decodes a string into text; beyond limit bytes it fails with errTooLong.
	strValue
	// strKey decodes a member name into text, tagged: keyVerbatim and the name when it is at
	// most limit bytes, keyHashed and its SHA-256 beyond.
	strKey
)

const (
	keyVerbatim = 'v'
	keyHashed   = 'h'
)

// plain marks the bytes a string holds as they are: printable ASCII but '"' and '\\'.
var plain = func() (t [256]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str reads the string whose opening quote is at pos, as a stream: escapes and UTF-8 are
// checked as they come, and only what mode keeps is kept.
func (d *decoder) str(mode strMode, limit int) error {
	d.pos++
	d.text = d.text[:0]
	if mode == strKey {
		d.text = append(d.text, keyVerbatim)
		d.hashing = false
	}
	for {
		start, p := d.pos, d.pos
		for p < d.end && plain[d.buf[p]] {
			p++
		}
		if p > start {
			if err := d.emit(mode, limit, d.buf[start:p]); err != nil {
				return err
			}
			d.pos = p
		}
		if p == d.end {
			d.fill()
			if d.pos == d.end {
				return d.short()
			}
			continue
		}
		switch c := d.buf[p]; {
		case c == '"':
			d.pos++
			if mode == strKey && d.hashing {
				d.text = append(d.text[:0], keyHashed)
				d.text = d.long.Sum(d.text)
			}
			return nil
		case c == '\\':
			if err := d.escape(mode, limit); err != nil {
				return err
			}
		case c < ' ':
			return d.syntax("%s in a string (control characters must be escaped)", describe(c))
		default:
			if !d.want(utf8.UTFMax) && !utf8.FullRune(d.buf[d.pos:d.end]) && d.rerr != nil {
				return d.rerr
			}
			r, n := utf8.DecodeRune(d.buf[d.pos:d.end])
			if r == utf8.RuneError && n <= 1 {
				return malformed("The request body holds text that is not valid UTF-8 (at byte %d).", d.at())
			}
			if err := d.emit(mode, limit, d.buf[d.pos:d.pos+n]); err != nil {
				return err
			}
			d.pos += n
		}
	}
}

// escape reads the escape sequence at pos.
func (d *decoder) escape(mode strMode, limit int) error {
	if !d.want(2) {
		return d.short()
	}
	var b byte
	switch e := d.buf[d.pos+1]; e {
	case '"', '\\', '/':
		b = e
	case 'b':
		b = '\b'
	case 'f':
		b = '\f'
	case 'n':
		b = '\n'
	case 'r':
		b = '\r'
	case 't':
		b = '\t'
	case 'u':
		return d.unicodeEscape(mode, limit)
	default:
		return d.syntax(`invalid escape sequence (the escapes are \" \\ \/ \b \f \n \r \t and \uXXXX)`)
	}
	d.scratch[0] = b
	if err := d.emit(mode, limit, d.scratch[:1]); err != nil {
		return err
	}
	d.pos += 2
	return nil
}

// unicodeEscape reads a \uXXXX escape at pos, or a pair of them for a surrogate pair.
func (d *decoder) unicodeEscape(mode strMode, limit int) error {
	if !d.want(6) {
		return d.short()
	}
	v, ok := hex4(d.buf[d.pos+2 : d.pos+6])
	if !ok {
		return d.syntax(`invalid \u escape (expecting four hexadecimal digits)`)
	}
	r, n := rune(v), 6
	if utf16.IsSurrogate(r) {
		if !d.want(12) && d.rerr != nil {
			return d.rerr
		}
		b := d.buf[d.pos:d.end]
		if r >= 0xdc00 || len(b) < 12 || b[6] != '\\' || b[7] != 'u' {
			return d.loneSurrogate()
		}
		v2, ok := hex4(b[8:12])
		if !ok || v2 < 0xdc00 || v2 > 0xdfff {
			return d.loneSurrogate()
		}
		r, n = utf16.DecodeRune(r, rune(v2)), 12
	}
	if err := d.emit(mode, limit, utf8.AppendRune(d.scratch[:0], r)); err != nil {
		return err
	}
	d.pos += n
	return nil
}

func (d *decoder) loneSurrogate() error {
	return malformed(`The request body holds text that is not valid Unicode (at byte %d): `+
		`a \uXXXX escape of a surrogate (\ud800 to \udfff) must be one half of a pair.`, d.at())
}

func hex4(b []byte) (uint16, bool) {
	var v uint16
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint16(c)
	}
	return v, true
}

// emit takes decoded bytes of the string being read, as mode says.
func (d *decoder) emit(mode strMode, limit int, p []byte) error {
	switch mode {
	case strValue:
		if len(d.text)+len(p) > limit {
			return errTooLong
		}
		d.text = append(d.text, p...)
	case strKey:
		switch {
		case d.hashing:
			d.long.Write(p)
		case len(d.text)-1+len(p) > limit:
			if d.long == nil {
				d.long = sha256.New()
			}
			d.long.Reset()
			d.long.Write(d.text[1:])
			d.long.Write(p)
			d.hashing = true
		default:
			d.text = append(d.text, p...)
		}
	}
	return nil
}

// nameStack holds the member names of the objects being read, innermost last, to find a
// name given twice. An object's names are searched in a list up to maxListedNames, in a map
// beyond.
type nameStack struct {
	arena  []byte // the names, one after the other
	ends   []int  // where each name ends in arena
	levels []nameLevel
}

type nameLevel struct {
	n     int                 // how many names the object has
	first int                 // index in ends of the object's first name
	set   map[string]struct{} // all of the object's names, once it has many
}

func (s *nameStack) reset() {
	clear(s.levels[:cap(s.levels)])
	s.arena, s.ends, s.levels = s.arena[:0], s.ends[:0], s.levels[:0]
}

func (s *nameStack) push() { s.levels = append(s.levels, nameLevel{first: len(s.ends)}) }

func (s *nameStack) pop() {
	l := s.levels[len(s.levels)-1]
	s.levels[len(s.levels)-1] = nameLevel{}
	s.levels = s.levels[:len(s.levels)-1]
	s.arena = s.arena[:s.start(l.first)]
	s.ends = s.ends[:l.first]
}

func (s *nameStack) start(i int) int {
	if i == 0 {
		return 0
	}
	return s.ends[i-1]
}

// members is how many names the innermost object has so far.
func (s *nameStack) members() int { return s.levels[len(s.levels)-1].n }

// add records name in the innermost object and reports whether it was new there.
func (s *nameStack) add(name []byte) bool {
	l := &s.levels[len(s.levels)-1]
	if l.set != nil {
		if _, ok := l.set[string(name)]; ok {
			return false
		}
		l.set[string(name)] = struct{}{}
		l.n++
		return true
	}
	for i := l.first; i < len(s.ends); i++ {
		if string(s.arena[s.start(i):s.ends[i]]) == string(name) {
			return false
		}
	}
	s.arena = append(s.arena, name...)
	s.ends = append(s.ends, len(s.arena))
	l.n++
	if len(s.ends)-l.first > maxListedNames {
		l.set = make(map[string]struct{}, 2*maxListedNames)
		for i := l.first; i < len(s.ends); i++ {
			l.set[string(s.arena[s.start(i):s.ends[i]])] = struct{}{}
		}
	}
	return true
}
