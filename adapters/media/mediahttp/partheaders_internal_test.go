package mediahttp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"strings"
	"testing"
	"testing/iotest"
)

const testBoundary = "xYz-boundary"

// chunked returns b in reads of the sizes sizes gives in turn (cycling), so that every
// decision of the filter meets the end of a read somewhere.
type chunked struct {
	b     []byte
	sizes []int
	i     int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := min(c.sizes[c.i%len(c.sizes)], len(p), len(c.b))
	c.i++
	n = copy(p, c.b[:n])
	c.b = c.b[n:]
	return n, nil
}

func (c *chunked) Close() error { return nil }

// filtered is what the filter makes of body, read with reads that end at split and then
// every step bytes (step 0: the rest in one read).
func filtered(t testing.TB, body []byte, boundary string, split, step int) []byte {
	t.Helper()
	sizes := []int{max(split, 1)}
	if step > 0 {
		sizes = append(sizes, step)
	} else {
		sizes = append(sizes, len(body)+1)
	}
	if split == 0 {
		sizes = sizes[1:]
	}
	out, err := io.ReadAll(newPartHeaderFilter(&chunked{b: body, sizes: sizes}, boundary))
	if err != nil {
		t.Fatalf("reading the filter: %v", err)
	}
	return out
}

// parsed is what mime/multipart reads from a body: each part's header and content, and the
// error that stopped it (nil at the close delimiter).
type parsedPart struct {
	header  string
	content []byte
	readErr string
}

func parse(body io.Reader, boundary string) ([]parsedPart, error) {
	mr := multipart.NewReader(body, boundary)
	var parts []parsedPart
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return parts, nil
		}
		if err != nil {
			return parts, err
		}
		content, err := io.ReadAll(p)
		pp := parsedPart{header: fmt.Sprint(p.Header), content: content}
		if err != nil {
			pp.readErr = err.Error()
		}
		parts = append(parts, pp)
		if err != nil {
			return parts, err
		}
	}
}

// bodyWithNames is a multipart body of one file part per name, each holding content,
// written as Go's multipart.Writer writes them (raw control characters in file names).
func bodyWithNames(t testing.TB, boundary string, content []byte, names ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.SetBoundary(boundary); err != nil {
		t.Fatal(err)
	}
	if err := mw.WriteField("description", "a field"); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		w, err := mw.CreateFormFile("file", name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(content)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// awkwardContent is part content that holds what a careless filter would take for framing or
// a header: every control byte, line ends, boundaries that are content (not after a line end,
// or followed by other bytes), a partial delimiter at the end, and a blank line.
func awkwardContent() []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	for c := range 0x20 {
		b.WriteByte(byte(c))
	}
	b.WriteByte(0x7f)
	b.WriteString("\r\n\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\x01b\"\r\n\r\n")
	b.WriteString("x--" + testBoundary + "\r\n")     // not after a line end: content
	b.WriteString("\r\n--" + testBoundary + "x\r\n") // followed by another byte: content
	b.WriteString("\r\n--" + testBoundary + "-x")    // one dash: content
	b.WriteString("\n--" + testBoundary + "\x01")    // LF alone in a CRLF body: content
	b.WriteString("\r\r\n--" + testBoundary[:5])     // the start of a delimiter
	b.WriteString("\x00\x01\x7f")
	b.WriteString("\r\n--" + testBoundary[:len(testBoundary)-1])
	return b.Bytes()
}

// TestPartHeaderFilterRemovesControlCharactersFromPartHeaders: a raw control character in a
// part's file name, which net/textproto refuses, is removed, whatever the reads' sizes; every
// byte of the content passes unchanged, control bytes and boundary look-alikes included.
func TestPartHeaderFilterRemovesControlCharactersFromPartHeaders(t *testing.T) {
	content := awkwardContent()
	raw := bodyWithNames(t, testBoundary, content, "a\x01b.png", "c\x00\x1f\x7fd.png", "plain.png", "tab\tname.png")
	if _, err := parse(bytes.NewReader(raw), testBoundary); err == nil {
		t.Fatal("mime/multipart accepts the raw body: the test shows nothing")
	}
	want := []string{"ab.png", "cd.png", "plain.png", "tab\tname.png"}
	check := func(t *testing.T, out []byte) {
		t.Helper()
		mr := multipart.NewReader(bytes.NewReader(out), testBoundary)
		var names []string
		for {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("the filtered body does not parse: %v", err)
			}
			got, err := io.ReadAll(p)
			if err != nil {
				t.Fatal(err)
			}
			if p.FormName() == "description" {
				if string(got) != "a field" {
					t.Fatalf("field %q", got)
				}
				continue
			}
			if !bytes.Equal(got, content) {
				t.Fatalf("part %q: content changed:\n got %q\nwant %q", p.FileName(), got, content)
			}
			names = append(names, p.FileName())
		}
		if fmt.Sprint(names) != fmt.Sprint(want) {
			t.Fatalf("file names %q, want %q", names, want)
		}
	}
	for split := range len(raw) + 1 {
		for _, step := range []int{0, 1, 2, 3, 7, 64} {
			if step > 0 && step < 4 && split%17 != 0 {
				continue // tiny reads at every offset would take long: every 17th
			}
			check(t, filtered(t, raw, testBoundary, split, step))
		}
	}
	// One byte at a time, through the standard test reader.
	out, err := io.ReadAll(newPartHeaderFilter(io.NopCloser(iotest.OneByteReader(bytes.NewReader(raw))), testBoundary))
	if err != nil {
		t.Fatal(err)
	}
	check(t, out)
}

// TestPartHeaderFilterFollowsTheFraming: in bodies of every shape mime/multipart reads
// (CRLF and LF-only line ends; an empty part that ends at "--boundary" with no line end
// before it; a preamble with boundary look-alikes and control bytes; delimiter lines with
// spaces; folded and empty headers; an epilogue with anything in it), control characters in
// the part headers (at each <C>) are removed and nothing else changes, byte for byte, however
// the reads split the body. Where <C> is empty, the body comes out unchanged.
func TestPartHeaderFilterFollowsTheFraming(t *testing.T) {
	content := string(awkwardContent())
	b := "--" + testBoundary
	cd := "Content-Disposition: form-data; name=\"file\"; filename=\"a<C>.png\""
	templates := map[string]string{
		"writer": string(bodyWithNames(t, testBoundary, []byte(content), "a<C>.png", "b.png")),
		"preamble": "preamble \x01\x02 line\r\n" + b + "x\r\n" + b + "--x\r\n" + b + "--\n-" + b + "\r\n\r\n" +
			b + " --\r\n" + b + "\r\r\n" + b[:4] + "\n" + b + " \t\r\n" + cd + "<C>\r\n\r\n" + content + "\r\n" + b + "--\r\n",
		"lf only": "preamble\n" + b + "\n" + cd + "\n\n" +
			"\x01\r\n\r--" + b + "\r\n-" + b + "x\n" + b + "-\n--" + b[:4] + "\n\n" +
			"\n" + b + "\t\nContent-Type: image/<C>png\n" + cd + "\n\n\x00\x01\r\n" +
			"\n" + b + "\n<C>\n\x02\x03\n" + b + "--\n",
		"empty part": b + "\r\n" + cd + "\r\n\r\n" + b +
			"\r\n" + cd + "\r\n<C>\r\n" + content + "\r\n" + b + "--",
		"empty header": b + "\r\n\r\n" + content + "\r\n" + b + "\r\n\r\n\x01\r\n" + b + "\r\n<C>\r\n\x02" +
			"\r\n" + b + "--\r\nepilogue \x01\x02\r\n" + b + "\r\nX: \x01\r\n\r\n",
		"folded header": b + "\r\nContent-Disposition: form-data; name=\"file\";\r\n filename=\"a<C>.png\"\r\n \r\n\r\n" + content +
			"\r\n" + b + "-- \t\r\n",
		"dash boundary at body start": b + "\r\n" + cd + "\r\n\r\n" + b + "-x\x01" + content + "\r\n" + b +
			"\r\n" + cd + "\r\n\r\n" + b + "--\r\n",
		"close delimiter in the preamble": "preamble\r\n" + b + "--\r\n" + b + "\r\nX: \x01\r\n\r\n\x01",
		"close delimiter at body start":   b + "\r\n" + cd + "\r\n\r\n" + b + "--\r\n\x01",
	}
	for name, template := range templates {
		t.Run(name, func(t *testing.T) {
			want := strings.ReplaceAll(template, "<C>", "")
			if parts, err := parse(strings.NewReader(want), testBoundary); err != nil {
				t.Fatalf("mime/multipart does not read the body: %d parts, %v", len(parts), err)
			}
			raw := strings.ReplaceAll(template, "<C>", "\x00\x01\x08\x0b\x0c\x0e\x1f\x7f")
			if raw != want {
				if _, err := parse(strings.NewReader(raw), testBoundary); err == nil {
					t.Fatal("mime/multipart reads the body with control characters in its headers")
				}
			}
			for _, body := range []string{raw, want} {
				for split := range len(body) + 1 {
					for _, step := range []int{0, 1, 5} {
						if step == 1 && split%13 != 0 {
							continue
						}
						if out := filtered(t, []byte(body), testBoundary, split, step); string(out) != want {
							t.Fatalf("split at %d, then reads of %d:\n got %q\nwant %q", split, step, out, want)
						}
					}
				}
			}
		})
	}
}

// TestPartHeaderFilterKeepsMalformedHeadersMalformed: a header line that is malformed for
// another reason than a control character (no colon, a line break in the file name) is still
// refused by mime/multipart; controls removed leave nothing that parses differently from what
// the sender wrote, and the bytes removed are bounded.
func TestPartHeaderFilterKeepsMalformedHeadersMalformed(t *testing.T) {
	b := "--" + testBoundary
	for name, body := range map[string]string{
		"no colon":       b + "\r\nContent-Disposition form-data\r\n\r\nx\r\n" + b + "--\r\n",
		"line break":     b + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\nb.png\"\r\n\r\nx\r\n" + b + "--\r\n",
		"lone CR":        b + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\rb.png\"\r\n\r\nx\r\n" + b + "--\r\n",
		"initial space":  b + "\r\n Content-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n" + b + "--\r\n",
		"too many drops": b + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a" + strings.Repeat("\x01", maxDroppedBytes+1) + "b\"\r\n\r\nx\r\n" + b + "--\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := parse(newPartHeaderFilter(io.NopCloser(strings.NewReader(body)), testBoundary), testBoundary); err == nil {
				t.Fatal("the filtered body parses")
			}
		})
	}
}

// The filter's output is the body with some control bytes removed, and mime/multipart reads
// the same parts from it as from the body, up to where it fails on the body; a body it reads
// whole it reads whole and the same after the filter. Read sizes vary with the input.
func FuzzPartHeaderFilter(f *testing.F) {
	f.Add(bodyWithNames(f, testBoundary, awkwardContent(), "a\x01b.png", "x.png"), uint64(7))
	f.Add(bodyWithNames(f, testBoundary, []byte("\r\n--"+testBoundary+"-\r\n"), "a.png"), uint64(1))
	f.Add([]byte("--"+testBoundary+"\nA: \x01b\n\ncontent\n--"+testBoundary+"--\n"), uint64(3))
	f.Add([]byte("--"+testBoundary+"\r\n\r\n--"+testBoundary+"\r\n\x02X: y\r\n\r\nz\r\n--"+testBoundary+"--"), uint64(2))
	f.Fuzz(func(t *testing.T, body []byte, seed uint64) {
		rng := rand.New(rand.NewPCG(seed, seed>>7))
		sizes := make([]int, 8)
		for i := range sizes {
			sizes[i] = 1 + rng.IntN(40)
		}
		flt := newPartHeaderFilter(&chunked{b: body, sizes: sizes}, testBoundary)
		out, err := io.ReadAll(flt)
		if err != nil {
			t.Fatal(err)
		}
		// out is body less some control bytes: the other bytes are all there, in order. Byte
		// by byte, not rune by rune: dropping a control byte may join the bytes around it into
		// one UTF-8 character ("\xc5\x0f\x8f" becomes "ŏ"), which changes no other byte.
		keep := func(b []byte) []byte {
			out := make([]byte, 0, len(b))
			for _, c := range b {
				if c >= 0x80 || !droppable(c) {
					out = append(out, c)
				}
			}
			return out
		}
		if len(out) > len(body) || !bytes.Equal(keep(out), keep(body)) {
			t.Fatalf("the filter changed more than control characters:\n got %q\nfrom %q", out, body)
		}
		// Compared as mime/multipart reads them, not byte for byte: where a body ends inside a
		// part's headers, Go 1.27's reader reports the end of the body (no error) and Go
		// 1.26's an error, so whether such a body "reads whole" depends on the version, while
		// the parts read are the same either way.
		// For the same reason a body that ends inside a header block is not held to "reads
		// whole": the reader may report the end before it judges the block's lines, and the
		// filter, which removes control bytes anywhere in a header block, may have turned one
		// malformed line into another that is judged first (" :" after "\x00 :", a
		// continuation line at the start of a block). Its parts are still compared below.
		endsInHeaders := flt.state == inHeader
		rawParts, rawErr := parse(bytes.NewReader(body), testBoundary)
		gotParts, gotErr := parse(bytes.NewReader(out), testBoundary)
		if rawErr == nil && !endsInHeaders && (gotErr != nil || len(gotParts) != len(rawParts)) {
			t.Fatalf("a body mime/multipart reads whole (%d parts) reads differently after the filter (%d parts, %v):\n got %q\nfrom %q",
				len(rawParts), len(gotParts), gotErr, out, body)
		}
		for i, p := range rawParts {
			if i >= len(gotParts) || gotParts[i].header != p.header || !bytes.Equal(gotParts[i].content, p.content) {
				t.Fatalf("part %d differs after the filter", i)
			}
		}
	})
}

// TestPartHeaderFilterBoundsAHeaderBlock: each part's header block (its lines and their line
// ends, up to the blank line) may hold maxPartHeaderBytes; one byte more fails the body with
// errPartHeaderTooLarge, in whichever part and whatever the reads' sizes, and the count starts
// again at each part.
func TestPartHeaderFilterBoundsAHeaderBlock(t *testing.T) {
	block := func(size int) string { // a header block of size bytes, blank line included
		const start = "Content-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\nX-Junk: "
		return start + strings.Repeat("a", size-len(start)-4) + "\r\n\r\n"
	}
	body := func(sizes ...int) []byte {
		var b strings.Builder
		for _, size := range sizes {
			b.WriteString("--" + testBoundary + "\r\n" + block(size) + "content\r\n")
		}
		b.WriteString("--" + testBoundary + "--\r\n")
		return []byte(b.String())
	}
	for _, tc := range []struct {
		sizes   []int
		refused bool
	}{
		{[]int{maxPartHeaderBytes}, false},
		{[]int{maxPartHeaderBytes, maxPartHeaderBytes}, false},
		{[]int{maxPartHeaderBytes + 1}, true},
		{[]int{100, maxPartHeaderBytes + 1}, true},
		{[]int{9 << 20}, true},
	} {
		for _, split := range []int{1, 7, 4096, 1 << 20} {
			f := newPartHeaderFilter(&chunked{b: body(tc.sizes...), sizes: []int{split}}, testBoundary)
			parts, err := parse(f, testBoundary)
			if tc.refused != (err != nil) || tc.refused != errors.Is(f.Err(), errPartHeaderTooLarge) {
				t.Errorf("header blocks of %v bytes, reads of %d: %d parts, %v, filter %v; refused want %v",
					tc.sizes, split, len(parts), err, f.Err(), tc.refused)
			}
			if !tc.refused && len(parts) != len(tc.sizes) {
				t.Errorf("header blocks of %v bytes, reads of %d: %d parts", tc.sizes, split, len(parts))
			}
		}
	}
}
