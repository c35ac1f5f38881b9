package ecghttp

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/ecg/ecg"
)

// memSink keeps the blocks put to it, checking their order.
type memSink struct {
	blocks []ecg.Block
	err    error // returned by Put when set
}

func (s *memSink) Put(b ecg.Block) error {
	if s.err != nil {
		return s.err
	}
	b.Data = bytes.Clone(b.Data)
	s.blocks = append(s.blocks, b)
	return nil
}

// signals unpacks the blocks, lead by lead, failing t if they are not in order (lead by lead,
// each lead's blocks numbered from 0) or do not decode.
func (s *memSink) signals(t testing.TB) map[int][]int32 {
	t.Helper()
	out := map[int][]int32{}
	lastLead, nextSeq := -1, 0
	for _, b := range s.blocks {
		if b.Lead != lastLead {
			if b.Lead < lastLead {
				t.Fatalf("block of lead %d after lead %d", b.Lead, lastLead)
			}
			lastLead, nextSeq = b.Lead, 0
		}
		if b.Seq != nextSeq {
			t.Fatalf("lead %d: block seq %d, want %d", b.Lead, b.Seq, nextSeq)
		}
		nextSeq++
		before := len(out[b.Lead])
		got, err := ecg.AppendUnpacked(out[b.Lead], b.Data)
		if err != nil {
			t.Fatalf("lead %d block %d: %v", b.Lead, b.Seq, err)
		}
		if len(got)-before != b.Samples {
			t.Fatalf("lead %d block %d: says %d samples, holds %d", b.Lead, b.Seq, b.Samples, len(got)-before)
		}
		out[b.Lead] = got
	}
	return out
}

func decodeString(t testing.TB, body string) (ecg.Draft, *memSink, error) {
	t.Helper()
	sink := &memSink{}
	d, err := decodeECG(strings.NewReader(body), sink)
	return d, sink, err
}

// mustDecode decodes body, which must be accepted, and checks its blocks against the drafted
// signals.
func mustDecode(t testing.TB, body string) (ecg.Draft, map[int][]int32) {
	t.Helper()
	d, sink, err := decodeString(t, body)
	if err != nil {
		t.Fatalf("decodeECG: %v", err)
	}
	signals := sink.signals(t)
	for i, l := range d.Leads {
		if got := len(signals[i]); got != l.Signal.Samples {
			t.Fatalf("lead %d: %d samples in blocks, draft says %d", i, got, l.Signal.Samples)
		}
	}
	return d, signals
}

// classOf is the status the handler answers an error with: 400, 422, 0 for none, -1 for
// anything else.
func classOf(err error) int {
	var m *malformedError
	var v *domain.ValidationError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &m):
		return 400
	case errors.As(err, &v):
		return 422
	}
	return -1
}

// signalSummary is what SignalWriter.Close must report for samples.
func signalSummary(samples []int32) ecg.Signal {
	raw := make([]byte, 0, 4*len(samples))
	for _, v := range samples {
		raw = binary.LittleEndian.AppendUint32(raw, uint32(v))
	}
	return ecg.Signal{
		Samples:   len(samples),
		TextBytes: int64(len(ecg.AppendSignalText(nil, samples, true))),
		Hash:      sha256.Sum256(raw),
	}
}

// rangeInts is "0,1,...,n-1".
func rangeInts(n int) string {
	var b []byte
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(i), 10)
	}
	return string(b)
}

// leadsWith is a body whose leads are n copies of lead, then extra (raw JSON, after a comma
// when not empty).
func leadsWith(n int, lead, extra string) string {
	parts := make([]string, 0, n+1)
	for range n {
		parts = append(parts, lead)
	}
	if extra != "" {
		parts = append(parts, extra)
	}
	return `{"date":"2024-05-01T09:30:00Z","leads":[` + strings.Join(parts, ",") + `]}`
}

func TestDecodeAcceptsAnECG(t *testing.T) {
	body := string(ecgBody(12, 5000))
	d, signals := mustDecode(t, body)
	if !d.IDSent || d.ID != "ecg-12x5000" {
		t.Fatalf("id %q sent %v", d.ID, d.IDSent)
	}
	if d.Date == nil || *d.Date != "2024-05-01T09:30:00.125Z" {
		t.Fatalf("date %v", d.Date)
	}
	if len(d.Leads) != 12 {
		t.Fatalf("%d leads", len(d.Leads))
	}
	for i, l := range d.Leads {
		want := ecgLeadSamples(i, 5000)
		if l.Name == nil || *l.Name != ecgLeadName(i) {
			t.Fatalf("lead %d: name %v", i, l.Name)
		}
		if l.Samples == nil || *l.Samples != 5000 {
			t.Fatalf("lead %d: declared samples %v", i, l.Samples)
		}
		if !l.SignalSent || l.Signal != signalSummary(want) {
			t.Fatalf("lead %d: signal %+v, want %+v", i, l.Signal, signalSummary(want))
		}
		if !slices.Equal(signals[i], want) {
			t.Fatalf("lead %d: the blocks do not hold the samples sent", i)
		}
	}
	// The draft is one the aggregate accepts.
	now := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	if _, err := ecg.New("k1", "u1", d, now); err != nil {
		t.Fatalf("ecg.New refused the draft: %v", err)
	}
}

// TestDecodeSignalText checks the signal's summary (count, text length as AppendSignalText
// writes it, SHA-256 of little-endian int32s) and blocks, across block boundaries and for
// numbers of every length and sign.
func TestDecodeSignalText(t *testing.T) {
	var samples []int32
	for i := range 3*ecg.MaxBlockSamples + 17 {
		v := int32(i*7919) % 2_000_000_000
		if i%3 == 0 {
			v = -v
		}
		switch i % 1000 {
		case 1:
			v = math.MaxInt32
		case 2:
			v = math.MinInt32
		case 3:
			v = 0
		}
		samples = append(samples, v)
	}
	text := string(ecg.AppendSignalText(nil, samples, true))
	third := text[:strings.LastIndexByte(text[:len(text)/3], ',')]
	body := `{"leads":[{"signal":[],"name":"I"},{"signal":[` + text + `]},{"signal":[` + third + `]}]}`
	d, signals := mustDecode(t, body)
	if got := d.Leads[1].Signal; got != signalSummary(samples) {
		t.Fatalf("signal %+v, want %+v", got, signalSummary(samples))
	}
	if d.Leads[1].Signal.TextBytes != int64(len(text)) {
		t.Fatalf("text bytes %d, want %d", d.Leads[1].Signal.TextBytes, len(text))
	}
	if !slices.Equal(signals[1], samples) {
		t.Fatal("the blocks of lead 1 do not hold the samples sent")
	}
	if s := d.Leads[0].Signal; !d.Leads[0].SignalSent || s.Samples != 0 || s.TextBytes != 0 || s != signalSummary(nil) {
		t.Fatalf("empty signal: %+v sent %v", s, d.Leads[0].SignalSent)
	}
	if len(signals[0]) != 0 {
		t.Fatal("an empty signal wrote blocks")
	}
	if d.Leads[2].Signal != signalSummary(signals[2]) {
		t.Fatal("lead 2's summary does not describe its blocks")
	}
	if !slices.Equal(signals[2], samples[:len(signals[2])]) || len(signals[2]) < ecg.MaxBlockSamples {
		t.Fatalf("lead 2: %d samples, not the first of the signal", len(signals[2]))
	}
}

func TestDecodeDraft(t *testing.T) {
	cases := []struct {
		name  string
		body  string
		check func(t *testing.T, d ecg.Draft)
	}{
		{"nothing sent", `{}`, func(t *testing.T, d ecg.Draft) {
			if d.IDSent || d.ID != "" || d.Date != nil || d.Leads != nil {
				t.Fatalf("draft %+v", d)
			}
		}},
		{"empty id is sent", `{"id":""}`, func(t *testing.T, d ecg.Draft) {
			if !d.IDSent || d.ID != "" {
				t.Fatalf("draft %+v", d)
			}
		}},
		{"empty leads", `{"leads":[]}`, func(t *testing.T, d ecg.Draft) {
			if len(d.Leads) != 0 {
				t.Fatalf("leads %+v", d.Leads)
			}
		}},
		{"empty lead", `{"leads":[{}]}`, func(t *testing.T, d ecg.Draft) {
			l := d.Leads[0]
			if l.Name != nil || l.Samples != nil || l.SignalSent || l.Signal != (ecg.Signal{}) {
				t.Fatalf("lead %+v", l)
			}
		}},
		{"declared samples kept", `{"leads":[{"samples":3,"signal":[1,2]},{"samples":0},{"samples":1000000},{"samples":-0}]}`,
			func(t *testing.T, d ecg.Draft) {
				for i, want := range []int64{3, 0, 1000000, 0} {
					if d.Leads[i].Samples == nil || *d.Leads[i].Samples != want {
						t.Fatalf("lead %d: samples %v, want %d", i, d.Leads[i].Samples, want)
					}
				}
				if d.Leads[0].Signal.Samples != 2 {
					t.Fatalf("lead 0 holds %d samples", d.Leads[0].Signal.Samples)
				}
			}},
		{"escaped strings", `{"id":"a\u0062\/c","date":"2024\u002d05","leads":[{"name":"\u00e9\ud83d\ude00\n"}]}`,
			func(t *testing.T, d ecg.Draft) {
				if d.ID != "ab/c" || *d.Date != "2024-05" || *d.Leads[0].Name != "é😀\n" {
					t.Fatalf("draft %q %q %q", d.ID, *d.Date, *d.Leads[0].Name)
				}
			}},
		{"strings of 64 bytes", `{"id":"` + strings.Repeat(`\u0041`, 64) + `","date":"` + strings.Repeat("9", 64) +
			`","leads":[{"name":"` + strings.Repeat("é", 32) + `"}]}`,
			func(t *testing.T, d ecg.Draft) {
				if d.ID != strings.Repeat("A", 64) || len(*d.Date) != 64 || *d.Leads[0].Name != strings.Repeat("é", 32) {
					t.Fatalf("draft %q %q %q", d.ID, *d.Date, *d.Leads[0].Name)
				}
			}},
		{"members in any order", `{"leads":[{"signal":[5,-6],"samples":2,"name":"II"},{"name":"I","signal":[7]}],"date":"d","id":"x"}`,
			func(t *testing.T, d ecg.Draft) {
				if d.ID != "x" || *d.Date != "d" || *d.Leads[0].Name != "II" || *d.Leads[0].Samples != 2 ||
					*d.Leads[1].Name != "I" || d.Leads[1].Samples != nil {
					t.Fatalf("draft %+v", d)
				}
				if d.Leads[0].Signal != signalSummary([]int32{5, -6}) || d.Leads[1].Signal != signalSummary([]int32{7}) {
					t.Fatalf("signals %+v %+v", d.Leads[0].Signal, d.Leads[1].Signal)
				}
			}},
		{"unknown members skipped", `{"x":{"id":"no","a":[1,-2.5e+3,true,false,null,{},[],"s\"\\\u00e9"],"b":{"c":{"d":[[[]]]}}},` +
			`"leads":[{"comment":"signal","signal":[1],"extra":[{"signal":[9]}],"name":"V1","nested":{"name":"no"}}],` +
			`"ID":"case matters","Date":"no","leads ":1,"\u0069d":"escaped name","y":-0.0e-0}`,
			func(t *testing.T, d ecg.Draft) {
				if d.ID != "escaped name" || d.Date != nil || len(d.Leads) != 1 || *d.Leads[0].Name != "V1" ||
					d.Leads[0].Signal != signalSummary([]int32{1}) {
					t.Fatalf("draft %+v", d)
				}
			}},
		{"integer forms", `{"leads":[{"signal":[0,-0,1,-1,10,2147483647,-2147483648]}]}`,
			func(t *testing.T, d ecg.Draft) {
				if d.Leads[0].Signal != signalSummary([]int32{0, 0, 1, -1, 10, math.MaxInt32, math.MinInt32}) {
					t.Fatalf("signal %+v", d.Leads[0].Signal)
				}
			}},
		{"int32 bounds", `{"leads":[{"signal":[2147483647,-2147483648,2147483646,-2147483647]}]}`,
			func(t *testing.T, d ecg.Draft) {
				want := []int32{math.MaxInt32, math.MinInt32, math.MaxInt32 - 1, math.MinInt32 + 1}
				if d.Leads[0].Signal != signalSummary(want) {
					t.Fatalf("signal %+v", d.Leads[0].Signal)
				}
			}},
		{"16 leads", leadsWith(16, `{"signal":[1]}`, ""), func(t *testing.T, d ecg.Draft) {
			if len(d.Leads) != 16 {
				t.Fatalf("%d leads", len(d.Leads))
			}
		}},
		{"nested 64 deep", `{"x":` + strings.Repeat("[", 63) + strings.Repeat("]", 63) + `}`, nil},
		{"long unknown names", `{"` + strings.Repeat("n", 70) + `":1,"` + strings.Repeat("n", 71) + `":2,"` +
			strings.Repeat("n", 64) + `":3,"` + strings.Repeat("n", 65) + `":4}`, nil},
		{"many unknown names", `{` + manyMembers(100) + `}`, nil},
		{"trailing whitespace", "{} \t\r\n ", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body
			d, _ := mustDecode(t, body)
			if tc.check != nil {
				tc.check(t, d)
			}
			// The same document spaced out decodes the same.
			spaced, _ := mustDecode(t, spaceOut(body))
			if fmt.Sprint(draftView(spaced)) != fmt.Sprint(draftView(d)) {
				t.Fatalf("spaced out: %v, compact: %v", draftView(spaced), draftView(d))
			}
		})
	}
}

// manyMembers is n members named m0, m1, ... (the map of names is used beyond 16).
func manyMembers(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`"m%d":{"a":1,"b":{"a":2}}`, i)
	}
	return strings.Join(parts, ",")
}

// draftView is a draft with its pointers followed, for comparisons.
func draftView(d ecg.Draft) string {
	var b strings.Builder
	fmt.Fprintf(&b, "id=%q/%v", d.ID, d.IDSent)
	if d.Date != nil {
		fmt.Fprintf(&b, " date=%q", *d.Date)
	}
	for i, l := range d.Leads {
		fmt.Fprintf(&b, " [%d", i)
		if l.Name != nil {
			fmt.Fprintf(&b, " name=%q", *l.Name)
		}
		if l.Samples != nil {
			fmt.Fprintf(&b, " samples=%d", *l.Samples)
		}
		fmt.Fprintf(&b, " sent=%v signal=%d/%d/%x]", l.SignalSent, l.Signal.Samples, l.Signal.TextBytes, l.Signal.Hash[:6])
	}
	return b.String()
}

// spaceOut puts JSON whitespace around every structural character outside strings, and
// before and after the document.
func spaceOut(body string) string {
	const ws = " \n\t\r "
	var b strings.Builder
	b.WriteString(ws)
	inString, escaped := false, false
	for i := range len(body) {
		c := body[i]
		switch {
		case inString:
			b.WriteByte(c)
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
			b.WriteByte(c)
		case strings.IndexByte("{}[],:", c) >= 0:
			b.WriteString(ws)
			b.WriteByte(c)
			b.WriteString(ws)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteString(ws)
	return b.String()
}

func TestDecodeRefuses(t *testing.T) {
	okLead := `{"name":"I","signal":[1,2,3]}`
	sig := func(s string) string { return `{"leads":[` + okLead + `,{"name":"II","signal":[` + s + `]}]}` }
	long := strings.Repeat("a", 65)
	var many strings.Builder // an unknown object of 1025 members
	many.WriteString(`{"x":{`)
	for i := range 1025 {
		if i > 0 {
			many.WriteByte(',')
		}
		fmt.Fprintf(&many, `"k%d":0`, i)
	}
	many.WriteString(`}}`)
	cases := []struct {
		name   string
		body   string
		status int
		// For a 400, a substring of the detail; for a 422, the field, a colon and a
		// substring of its message.
		detail string
	}{
		// Not an object.
		{"empty", "", 400, "empty"},
		{"whitespace only", " \n\t", 400, "empty"},
		{"array", `[]`, 400, "must be a JSON object"},
		{"null", `null`, 400, "must be a JSON object"},
		{"string", `"x"`, 400, "must be a JSON object"},
		{"garbage", `hello`, 400, "must be a JSON object"},
		// Named as what they are, as the kernel's decoder does, not as a missing object.
		{"byte order mark", "\ufeff{}", 400, "byte order mark (U+FEFF)"},
		{"utf-16 little-endian with its mark", "\xff\xfe{\x00}\x00", 400, "valid UTF-8"},
		{"utf-16 big-endian with its mark", "\xfe\xff\x00{\x00}", 400, "valid UTF-8"},
		// An object too large to check for repeated names in bounded memory.
		{"1025 members", many.String(), 400, "more than 1024 members"},
		// Truncated or followed by more.
		{"truncated object", `{"id":"a"`, 400, "ends before"},
		{"truncated name", `{"id`, 400, "ends before"},
		{"truncated string", `{"id":"ab`, 400, "ends before"},
		{"truncated signal", `{"leads":[{"signal":[1,2`, 400, "ends before"},
		{"truncated number", `{"leads":[{"signal":[12`, 400, "ends before"},
		{"truncated skipped", `{"x":[{"a":[1,{`, 400, "ends before"},
		{"truncated literal", `{"x":tru`, 400, "ends before"},
		{"truncated escape", `{"x":"\u12`, 400, "ends before"},
		{"second object", `{} {}`, 400, "nothing after it"},
		{"trailing garbage", `{}x`, 400, "nothing after it"},
		{"trailing bracket", `{"leads":[]}]`, 400, "nothing after it"},
		// Grammar.
		{"missing colon", `{"id" "a"}`, 400, "expecting ':'"},
		{"missing comma", `{"id":"a" "date":"b"}`, 400, "expecting ',' or '}'"},
		{"trailing comma in object", `{"id":"a",}`, 400, "expecting a member name"},
		{"trailing comma in leads", `{"leads":[{},]}`, 400, "expecting a lead"},
		{"trailing comma in signal", sig(`1,`), 400, "expecting a sample"},
		{"trailing comma in skipped array", `{"x":[1,]}`, 400, "expecting a value"},
		{"trailing comma in skipped object", `{"x":{"a":1,}}`, 400, "expecting a member name"},
		{"missing comma in signal", sig(`1 2`), 400, "expecting ',' or ']'"},
		{"single quotes", `{'id':'a'}`, 400, "expecting a member name"},
		{"unquoted name", `{id:"a"}`, 400, "expecting a member name"},
		{"bad literal", `{"x":nul}`, 400, "literal null"},
		{"bad literal in signal", sig(`1,tru`), 400, "literal true"},
		{"capitalised literal", `{"x":True}`, 400, "expecting a value"},
		// Numbers, strictly.
		{"leading zero", sig(`01`), 400, "expecting ',' or ']'"},
		{"negative leading zero", sig(`-01`), 400, "expecting ',' or ']'"},
		{"plus sign", sig(`+1`), 400, "expecting a value"},
		{"lone minus", sig(`-`), 400, "expecting a digit"},
		{"lone minus then comma", sig(`-,1`), 400, "expecting a digit"},
		{"dot without fraction", sig(`1.`), 400, "expecting a digit"},
		{"fraction without integer", sig(`.5`), 400, "expecting a value"},
		{"exponent without digits", sig(`1e`), 400, "expecting a digit"},
		{"exponent sign without digits", sig(`1e+`), 400, "expecting a digit"},
		{"dot before exponent", sig(`1.e5`), 400, "expecting a digit"},
		{"hex", sig(`0x10`), 400, "expecting ',' or ']'"},
		{"infinity", sig(`Infinity`), 400, "expecting a value"},
		{"NaN", sig(`NaN`), 400, "expecting a value"},
		{"malformed skipped number", `{"x":1.}`, 400, "expecting a digit"},
		{"malformed samples", `{"leads":[{"samples":01}]}`, 400, "expecting ',' or '}'"},
		// Wrong types; null is never a value of a known member.
		{"id null", `{"id":null}`, 400, `Field "id" must be a string, not null.`},
		{"id number", `{"id":5}`, 400, `Field "id" must be a string, not a number.`},
		{"id boolean", `{"id":true}`, 400, `Field "id" must be a string, not a boolean.`},
		{"id object", `{"id":{}}`, 400, `Field "id" must be a string, not an object.`},
		{"date array", `{"date":[]}`, 400, `Field "date" must be a string, not an array.`},
		{"date null", `{"date":null}`, 400, `Field "date" must be a string, not null.`},
		{"leads null", `{"leads":null}`, 400, `Field "leads" must be an array, not null.`},
		{"leads object", `{"leads":{}}`, 400, `Field "leads" must be an array, not an object.`},
		{"lead string", `{"leads":[` + okLead + `,"II"]}`, 400, `Field "leads[1]" must be an object, not a string.`},
		{"lead null", `{"leads":[null]}`, 400, `Field "leads[0]" must be an object, not null.`},
		{"name number", `{"leads":[{"name":1}]}`, 400, `Field "leads[0].name" must be a string, not a number.`},
		{"name null", `{"leads":[{"name":null}]}`, 400, `Field "leads[0].name" must be a string, not null.`},
		{"samples string", `{"leads":[{"samples":"5"}]}`, 400, `Field "leads[0].samples" must be an integer, not a string.`},
		{"samples null", `{"leads":[{"samples":null}]}`, 400, `Field "leads[0].samples" must be an integer, not null.`},
		{"signal null", `{"leads":[{"signal":null}]}`, 400, `Field "leads[0].signal" must be an array, not null.`},
		{"signal string", `{"leads":[{"signal":"1,2"}]}`, 400, `Field "leads[0].signal" must be an array, not a string.`},
		{"signal object", `{"leads":[{"signal":{}}]}`, 400, `Field "leads[0].signal" must be an array, not an object.`},
		{"sample string", `{"leads":[` + okLead + `,` + okLead + `,{"signal":[` + rangeInts(17) + `,"17"]}]}`, 400,
			`Field "leads[2].signal[17]" must be an integer, not a string.`},
		{"sample null", sig(`1,null`), 400, `Field "leads[1].signal[1]" must be an integer, not null.`},
		{"first sample null", sig(`null`), 400, `Field "leads[1].signal[0]" must be an integer, not null.`},
		{"sample boolean", sig(`false`), 400, `Field "leads[1].signal[0]" must be an integer, not a boolean.`},
		{"sample array", sig(`1,2,[3]`), 400, `Field "leads[1].signal[2]" must be an integer, not an array.`},
		{"sample object", sig(`{}`), 400, `Field "leads[1].signal[0]" must be an integer, not an object.`},
		{"malformed literal for a string", `{"id":nul}`, 400, "literal null"},
		{"malformed number for a string", `{"id":-}`, 400, "expecting a digit"},
		// Text.
		{"invalid UTF-8 in id", "{\"id\":\"a\xffb\"}", 400, "not valid UTF-8"},
		{"invalid UTF-8 in name", "{\"leads\":[{\"name\":\"\xc3\"}]}", 400, "not valid UTF-8"},
		{"invalid UTF-8 in skipped", "{\"x\":[\"ok\",\"\xed\xa0\x80\"]}", 400, "not valid UTF-8"},
		{"invalid UTF-8 in member name", "{\"\xfe\":1}", 400, "not valid UTF-8"},
		{"overlong UTF-8", "{\"x\":\"\xc0\xaf\"}", 400, "not valid UTF-8"},
		{"invalid UTF-8 outside strings", "{\"x\":1\xff}", 400, "byte 0xff"},
		{"lone high surrogate", `{"id":"\ud800"}`, 400, "surrogate"},
		{"lone low surrogate", `{"id":"\udc00"}`, 400, "surrogate"},
		{"high surrogate then letter", `{"x":"\ud800\u0041"}`, 400, "surrogate"},
		{"two high surrogates", `{"x":"\ud800\ud800"}`, 400, "surrogate"},
		{"reversed pair", `{"x":"\udc00\ud800"}`, 400, "surrogate"},
		{"lone surrogate in a name", `{"\ud800":1}`, 400, "surrogate"},
		{"lone surrogate at the end", `{"x":"a\udbff"}`, 400, "surrogate"},
		{"bad escape", `{"x":"\x41"}`, 400, "invalid escape"},
		{"bad unicode escape", `{"x":"\u12G4"}`, 400, `invalid \u escape`},
		{"control character", "{\"x\":\"a\tb\"}", 400, "control characters must be escaped"},
		{"NUL in string", "{\"x\":\"\x00\"}", 400, "byte 0x00"},
		// Names given twice.
		{"id twice", `{"id":"a","id":"a"}`, 400, `Field "id" appears more than once.`},
		{"leads twice", `{"leads":[],"leads":[]}`, 400, `Field "leads" appears more than once.`},
		{"escaped name twice", `{"date":"a","\u0064ate":"b"}`, 400, `Field "date" appears more than once.`},
		{"signal twice", `{"leads":[{"signal":[1],"signal":[1]}]}`, 400, `Field "leads[0].signal" appears more than once.`},
		{"name twice", `{"leads":[{},{"name":"a","x":1,"name":"a"}]}`, 400, `Field "leads[1].name" appears more than once.`},
		{"unknown twice", `{"x":1,"x":2}`, 400, "more than once"},
		{"unknown twice in a lead", `{"leads":[{"x":1,"x":2}]}`, 400, "more than once"},
		{"twice in a skipped object", `{"x":[{"a":1,"b":{"a":1,"a":2}}]}`, 400, "more than once"},
		{"long name twice", `{"` + strings.Repeat("n", 100) + `":1,"` + strings.Repeat("n", 100) + `":2}`, 400, "more than once"},
		{"long escaped name twice", `{"` + strings.Repeat("n", 100) + `":1,"` + strings.Repeat("n", 99) + `\u006e":2}`, 400, "more than once"},
		{"twice among many", `{` + manyMembers(40) + `,"m7":0}`, 400, "more than once"},
		{"twice among many, nested", `{"x":{` + manyMembers(40) + `,"y":{` + manyMembers(20) + `,"m19":1}}}`, 400, "more than once"},
		// Depth.
		{"nested too deep", `{"x":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + `}`, 400, "more than 64 deep"},
		{"nested too deep in a lead", `{"leads":[{"x":` + strings.Repeat(`{"a":`, 62) + `1` + strings.Repeat("}", 62) + `}]}`, 400, "more than 64 deep"},

		// Well-formed values an ECG cannot hold.
		{"fraction", sig(`1,1.5`), 422, "leads[1].signal[1]: must be an integer"},
		{"exponent", sig(`1e3`), 422, "leads[1].signal[0]: must be an integer"},
		{"integral fraction", sig(`0,0,1.0`), 422, "leads[1].signal[2]: must be an integer"},
		{"negative zero fraction", sig(`-0.0`), 422, "leads[1].signal[0]: must be an integer"},
		{"capital exponent", sig(`1E+0`), 422, "leads[1].signal[0]: must be an integer"},
		{"name after the signal", `{"leads":[{"signal":[1,2.5],"name":"V1"}]}`, 422, "leads[0].signal[1]: must be an integer"},
		{"above int32", sig(`2147483648`), 422, "leads[1].signal[0]: must be within the signed 32-bit range"},
		{"below int32", sig(`5,-2147483649`), 422, "leads[1].signal[1]: must be within the signed 32-bit range"},
		{"huge integer", sig(`99999999999999999999999`), 422, "leads[1].signal[0]: must be within the signed 32-bit range"},
		{"huge negative integer", sig(`-99999999999999999999999999999999999999999999`), 422, "leads[1].signal[0]: must be within the signed 32-bit range"},
		{"18 digits", sig(`-999999999999999999`), 422, "leads[1].signal[0]: must be within the signed 32-bit range"},
		{"19 digits", sig(`1000000000000000000`), 422, "leads[1].signal[0]: must be within the signed 32-bit range"},
		{"samples fraction", `{"leads":[{"samples":1.5}]}`, 422, "leads[0].samples: must be an integer from 1 to 1000000"},
		{"samples exponent", `{"leads":[{"samples":1e2}]}`, 422, "leads[0].samples: must be an integer from 1 to 1000000"},
		{"samples negative", `{"leads":[{},{"samples":-1}]}`, 422, "leads[1].samples: must be an integer from 1 to 1000000"},
		{"samples too many", `{"leads":[{"samples":1000001}]}`, 422, "leads[0].samples: must be an integer"},
		{"samples huge", `{"leads":[{"samples":99999999999999999999}]}`, 422, "leads[0].samples: must be an integer"},
		{"17 leads", leadsWith(16, okLead, okLead), 422, "leads: must hold 1 to 16 leads"},
		{"17th lead not read", leadsWith(16, okLead, "{!!!"), 422, "leads: must hold 1 to 16 leads"},
		{"17th lead of another type", leadsWith(16, okLead, `"x"`), 422, "leads: must hold 1 to 16 leads"},
		{"id too long", `{"id":"` + long + `"}`, 422, "id: must be 1 to 64 characters"},
		{"id too long, escaped", `{"id":"` + strings.Repeat(`\u0041`, 65) + `"}`, 422, "id: must be 1 to 64 characters"},
		{"date too long", `{"date":"` + long + `"}`, 422, "date: must be an RFC 3339 date"},
		{"name too long", `{"leads":[{},{"name":"` + strings.Repeat("é", 33) + `"}]}`, 422, "leads[1].name: must be 1 to 16 characters"},
		{"id too long, then malformed", `{"id":"` + long + "\xff", 422, "id: must be"},
		// The first error in the order of the body wins.
		{"sample error before a type error", sig(`1.5,"x"`), 422, "leads[1].signal[0]: must be an integer"},
		{"type error before a sample error", sig(`"x",1.5`), 400, "not a string"},
		{"sample error before malformed JSON", sig(`2147483648,]`), 422, "leads[1].signal[0]: 32-bit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := decodeString(t, tc.body)
			if got := classOf(err); got != tc.status {
				t.Fatalf("error %v (class %d), want %d", err, got, tc.status)
			}
			if tc.status == 422 {
				field, message, _ := strings.Cut(tc.detail, ": ")
				var v *domain.ValidationError
				if !errors.As(err, &v) || len(v.Fields) != 1 || v.Fields[0].Field != field ||
					!strings.Contains(v.Fields[0].Message, message) {
					t.Fatalf("error %q, want %s %q", err, field, message)
				}
			} else if !strings.Contains(err.Error(), tc.detail) {
				t.Fatalf("error %q lacks %q", err, tc.detail)
			}
			// Read a byte at a time, the body gives the same error.
			_, err2 := decodeECG(iotest.OneByteReader(strings.NewReader(tc.body)), &memSink{})
			if err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("one byte at a time: %v, whole: %v", err2, err)
			}
		})
	}
}

// TestDecodeSampleErrorNamesTheLead: a sample's error names its lead when the name came
// before the signal.
func TestDecodeSampleErrorNamesTheLead(t *testing.T) {
	for _, tc := range []struct{ body, name string }{
		{`{"leads":[{"name":"aVR","signal":[1,1.5]}]}`, `"aVR"`},
		{`{"leads":[{"name":"V4","signal":[4294967296]}]}`, `"V4"`},
		{`{"leads":[{"signal":[1,1.5],"name":"aVR"}]}`, ""},
		{`{"leads":[{"name":"I","signal":[1]},{"signal":[4294967296],"name":"II"}]}`, ""},
	} {
		_, _, err := decodeString(t, tc.body)
		var v *domain.ValidationError
		if !errors.As(err, &v) {
			t.Fatalf("%s: %v", tc.body, err)
		}
		msg := v.Fields[0].Message
		if tc.name != "" && !strings.Contains(msg, tc.name) || tc.name == "" && strings.Contains(msg, `"`) {
			t.Fatalf("%s: message %q, want the name %s", tc.body, msg, tc.name)
		}
	}
}

// TestDecodeSampleLimit: a signal holds up to 1,000,000 samples; the next one is refused as
// it is read.
func TestDecodeSampleLimit(t *testing.T) {
	const n = ecg.MaxSamples
	var b strings.Builder
	b.WriteString(`{"leads":[{"name":"I","signal":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(i%4001 - 2000))
	}
	full := b.String()
	d, signals := mustDecode(t, full+`]}]}`)
	if d.Leads[0].Signal.Samples != n || len(signals[0]) != n {
		t.Fatalf("%d samples, %d in blocks", d.Leads[0].Signal.Samples, len(signals[0]))
	}
	if blocks := (n + ecg.MaxBlockSamples - 1) / ecg.MaxBlockSamples; blocks != 16 {
		t.Fatalf("%d blocks", blocks)
	}

	// The 1,000,001st sample is refused as soon as it is read: what follows is not.
	body := io.MultiReader(strings.NewReader(full+`,7,`), iotest.ErrReader(errors.New("not to be read")))
	_, err := decodeECG(body, &memSink{})
	var v *domain.ValidationError
	if !errors.As(err, &v) || v.Fields[0].Field != "leads[0].signal[1000000]" ||
		!strings.Contains(v.Fields[0].Message, "one too many") {
		t.Fatalf("1,000,001 samples: %v", err)
	}
}

// TestDecodeStopsAtFirstError: a 422 is returned as soon as it is found, without reading on.
func TestDecodeStopsAtFirstError(t *testing.T) {
	errNotRead := errors.New("not to be read")
	lead := `{"name":"I","signal":[1]}`
	cases := []struct {
		name, prefix, field string
	}{
		{"non-integer sample", `{"leads":[{"signal":[1,2.5,`, "leads[0].signal[1]"},
		{"sample out of range", `{"leads":[{"signal":[-3000000000 `, "leads[0].signal[0]"},
		{"17th lead", leadsWith(16, lead, "{")[:len(leadsWith(16, lead, "{"))-2], "leads"},
		{"long id", `{"id":"` + strings.Repeat("x", 65), "id"},
		{"long date", `{"date":"` + strings.Repeat("x", 65), "date"},
		{"long name", `{"leads":[{"name":"` + strings.Repeat("x", 65), "leads[0].name"},
		{"samples", `{"leads":[{"samples":2000000 `, "leads[0].samples"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := io.MultiReader(strings.NewReader(tc.prefix), iotest.ErrReader(errNotRead))
			_, err := decodeECG(r, &memSink{})
			var v *domain.ValidationError
			if !errors.As(err, &v) || v.Fields[0].Field != tc.field {
				t.Fatalf("error %v, want a validation error of %s", err, tc.field)
			}
		})
	}
}

// errAfter returns its body, then err.
type errAfter struct {
	r   io.Reader
	err error
}

func (e *errAfter) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if errors.Is(err, io.EOF) {
		return n, e.err
	}
	return n, err
}

func TestDecodeReadErrors(t *testing.T) {
	body := ecgBody(12, 5000)
	tooLarge := &http.MaxBytesError{Limit: 100_000}
	deadline := fmt.Errorf("read tcp: %w", os.ErrDeadlineExceeded)
	cases := []struct {
		name  string
		r     io.Reader
		check func(err error) bool
	}{
		{"too large mid-body", &errAfter{bytes.NewReader(body[:100_000]), tooLarge}, func(err error) bool {
			var e *http.MaxBytesError
			return errors.As(err, &e) && e == tooLarge
		}},
		{"too large mid-body, a byte at a time", iotest.OneByteReader(&errAfter{bytes.NewReader(body[:3001]), tooLarge}),
			func(err error) bool {
				var e *http.MaxBytesError
				return errors.As(err, &e)
			}},
		{"too large in a string", &errAfter{strings.NewReader(`{"x":"abc`), tooLarge}, func(err error) bool {
			var e *http.MaxBytesError
			return errors.As(err, &e)
		}},
		{"too large in an escape", &errAfter{strings.NewReader(`{"x":"\ud800\u`), tooLarge}, func(err error) bool {
			var e *http.MaxBytesError
			return errors.As(err, &e)
		}},
		{"too large in a rune", &errAfter{strings.NewReader("{\"x\":\"\xe2\x82"), tooLarge}, func(err error) bool {
			var e *http.MaxBytesError
			return errors.As(err, &e)
		}},
		{"too large in a number", &errAfter{strings.NewReader(`{"x":1.`), tooLarge}, func(err error) bool {
			var e *http.MaxBytesError
			return errors.As(err, &e)
		}},
		{"too large after a sample", &errAfter{strings.NewReader(`{"leads":[{"signal":[2147483647`), tooLarge}, func(err error) bool {
			var e *http.MaxBytesError
			return errors.As(err, &e)
		}},
		{"too large after the object", &errAfter{strings.NewReader(`{}   `), tooLarge}, func(err error) bool {
			var e *http.MaxBytesError
			return errors.As(err, &e)
		}},
		{"too large before anything", &errAfter{strings.NewReader(``), tooLarge}, func(err error) bool {
			var e *http.MaxBytesError
			return errors.As(err, &e)
		}},
		{"timeout", iotest.TimeoutReader(bytes.NewReader(body)), func(err error) bool {
			return errors.Is(err, iotest.ErrTimeout)
		}},
		{"read deadline", &errAfter{bytes.NewReader(body[:70_000]), deadline}, func(err error) bool {
			return errors.Is(err, os.ErrDeadlineExceeded)
		}},
		{"unexpected EOF (gzip)", &errAfter{bytes.NewReader(body[:10]), io.ErrUnexpectedEOF}, func(err error) bool {
			return errors.Is(err, io.ErrUnexpectedEOF)
		}},
		{"no progress", zeroReader{}, func(err error) bool { return errors.Is(err, io.ErrNoProgress) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeECG(tc.r, &memSink{})
			if !tc.check(err) {
				t.Fatalf("error %v (%T)", err, err)
			}
			if classOf(err) != -1 {
				t.Fatalf("a read error came back as a %d", classOf(err))
			}
		})
	}
}

// zeroReader never returns anything.
type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

// dataAndError returns its body with io.EOF in the same call, as readers may.
type dataAndError struct{ r io.Reader }

func (d dataAndError) Read(p []byte) (int, error) {
	n, err := io.ReadFull(d.r, p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return n, err
}

func TestDecodeReaders(t *testing.T) {
	body := ecgBody(3, 30_000)
	want, _ := mustDecode(t, string(body))
	for name, r := range map[string]io.Reader{
		"one byte":       iotest.OneByteReader(bytes.NewReader(body)),
		"half":           iotest.HalfReader(bytes.NewReader(body)),
		"data and error": iotest.DataErrReader(bytes.NewReader(body)),
		"read full":      dataAndError{bytes.NewReader(body)},
	} {
		t.Run(name, func(t *testing.T) {
			sink := &memSink{}
			got, err := decodeECG(r, sink)
			if err != nil {
				t.Fatal(err)
			}
			if draftView(got) != draftView(want) {
				t.Fatalf("draft %v, want %v", draftView(got), draftView(want))
			}
			signals := sink.signals(t)
			for i := range 3 {
				if !slices.Equal(signals[i], ecgLeadSamples(i, 30_000)) {
					t.Fatalf("lead %d differs", i)
				}
			}
		})
	}
}

func TestDecodeSinkError(t *testing.T) {
	unavailable := fmt.Errorf("spool full: %w", domain.ErrUnavailable)
	_, err := decodeECG(bytes.NewReader(ecgBody(2, 10)), &memSink{err: unavailable})
	if !errors.Is(err, domain.ErrUnavailable) || classOf(err) != -1 {
		t.Fatalf("error %v", err)
	}
}

// watchSink is a memSink told the upload's id (ecgport.IDWatcher), which it refuses with err.
type watchSink struct {
	memSink
	ids []string
	err error
}

func (s *watchSink) WatchID(id string) error {
	s.ids = append(s.ids, id)
	return s.err
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestDecodeTellsTheIDToAWatcher: a sink that watches ids is told the id as soon as it is
// read, and its refusal ends the decoding there, the rest of the body unread (the spool of an
// owner at the ECG quota refuses a new id so); a watcher that accepts changes nothing.
func TestDecodeTellsTheIDToAWatcher(t *testing.T) {
	body := ecgBody(12, 50000)
	refused := errors.New("refused")
	sink := &watchSink{err: refused}
	r := &countReader{r: bytes.NewReader(body)}
	_, err := decodeECG(r, sink)
	if !errors.Is(err, refused) {
		t.Fatalf("error %v, want the watcher's", err)
	}
	if len(sink.ids) != 1 || sink.ids[0] != "ecg-12x50000" || len(sink.blocks) != 0 {
		t.Fatalf("watcher told %q, %d blocks put; want the id once and no block", sink.ids, len(sink.blocks))
	}
	if r.n > 128<<10 || r.n >= len(body) {
		t.Fatalf("%d bytes of %d read after the id was refused", r.n, len(body))
	}
	want, _ := mustDecode(t, string(body))
	sink = &watchSink{}
	got, err := decodeECG(bytes.NewReader(body), sink)
	if err != nil || len(sink.ids) != 1 || got.ID != want.ID || len(got.Leads) != 12 || len(sink.blocks) == 0 {
		t.Fatalf("with an accepting watcher: %v, told %q, draft %q of %d leads", err, sink.ids, got.ID, len(got.Leads))
	}
}

// TestDecodeReusesItsState: a decoder that failed anywhere leaves nothing behind for the
// next, and decoders run concurrently.
func TestDecodeReusesItsState(t *testing.T) {
	good := string(ecgBody(2, 100))
	want, _ := mustDecode(t, good)
	bad := []string{
		`{"x":` + strings.Repeat(`{"a":[`, 30),
		`{"x":{"a":1,"a":2}}`,
		`{"leads":[{"name":"Z","signal":[1,2,3.5]}]}`,
		`{"` + strings.Repeat("n", 200) + `":"\ud800"}`,
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				if _, _, err := decodeString(t, bad[(g+i)%len(bad)]); err == nil {
					t.Error("a bad body was accepted")
					return
				}
				got, sink, err := decodeString(t, good)
				if err != nil || draftView(got) != draftView(want) || len(sink.blocks) != 2 {
					t.Errorf("after a failure: %v, %v", err, draftView(got))
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestDecodeAllocations: nothing is allocated per sample, and little per document. One
// decoder is reused by hand, as the pool reuses them, rather than through the pool, which the
// race detector (on in `make test`) empties at random.
func TestDecodeAllocations(t *testing.T) {
	small, large := ecgBody(12, 500), ecgBody(12, 50_000)
	sink := discardSink{}
	d := newDecoder()
	allocs := func(body []byte) float64 {
		r := bytes.NewReader(body)
		return testing.AllocsPerRun(20, func() {
			r.Reset(body)
			d.start(r, sink)
			_, err := d.document()
			d.finish()
			if err != nil {
				t.Fatal(err)
			}
		})
	}
	allocs(small) // grows the decoder's buffers
	a, b := allocs(small), allocs(large)
	// Per document: the draft's leads and values, the id and the date; and per lead, the
	// Signal that SignalWriter.Close returns (its hash escapes through hash.Hash.Sum).
	if b > a+1 || b > 4+12+1 {
		t.Fatalf("%v allocations for 6,000 samples, %v for 600,000", a, b)
	}
}

type discardSink struct{}

func (discardSink) Put(ecg.Block) error { return nil }

func BenchmarkDecodeECG(b *testing.B) {
	body := ecgBody(12, 5000)
	r := bytes.NewReader(body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(body)
		if _, err := decodeECG(r, discardSink{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeECGStdlib is what encoding/json takes for the same body, into structs.
func BenchmarkDecodeECGStdlib(b *testing.B) {
	body := ecgBody(12, 5000)
	r := bytes.NewReader(body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(body)
		var doc struct {
			ID    string
			Date  string
			Leads []struct {
				Name    string
				Samples *int
				Signal  []int32
			}
		}
		if err := json.NewDecoder(r).Decode(&doc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignalWriterFloor is what SignalWriter alone (packing and hashing) takes for the
// samples of BenchmarkDecodeECG's body, as MB/s of that body: the bound of any decoder using
// it.
func BenchmarkSignalWriterFloor(b *testing.B) {
	body := ecgBody(12, 5000)
	leads := make([][]int32, 12)
	for i := range leads {
		leads[i] = ecgLeadSamples(i, 5000)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var w *ecg.SignalWriter
	name := func() string { return "" }
	for b.Loop() {
		for i, samples := range leads {
			w = ecg.NewSignalWriter(w, discardSink{}, i, name)
			for _, v := range samples {
				if err := w.Add(int64(v)); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := w.Close(); err != nil {
				b.Fatal(err)
			}
		}
	}
}
