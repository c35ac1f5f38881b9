package ecg

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acme/postsvc/domain"
)

// memSink keeps blocks in memory.
type memSink struct{ blocks []Block }

func (m *memSink) Put(b Block) error {
	b.Data = slices.Clone(b.Data)
	m.blocks = append(m.blocks, b)
	return nil
}

// write feeds samples to a writer for the lead at position lead and closes it.
func write(t *testing.T, sink BlockSink, lead int, samples []int32) Signal {
	t.Helper()
	w := NewSignalWriter(nil, sink, lead, func() string { return "II" })
	for _, v := range samples {
		if err := w.Add(int64(v)); err != nil {
			t.Fatal(err)
		}
	}
	s, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSignalWriterBlocksAndDescribes: samples are cut into blocks of MaxBlockSamples that
// unpack to the input, and the signal's count, text length and hash are exact.
func TestSignalWriterBlocksAndDescribes(t *testing.T) {
	samples := ecgLike(2*MaxBlockSamples+17, 9)
	samples[5] = math.MinInt32
	sink := &memSink{}
	s := write(t, sink, 3, samples)
	if len(sink.blocks) != 3 {
		t.Fatalf("%d blocks, want 3", len(sink.blocks))
	}
	var got []int32
	for i, b := range sink.blocks {
		if b.Lead != 3 || b.Seq != i {
			t.Fatalf("block %d: lead %d seq %d", i, b.Lead, b.Seq)
		}
		var err error
		before := len(got)
		if got, err = AppendUnpacked(got, b.Data); err != nil {
			t.Fatal(err)
		}
		if b.Samples != len(got)-before {
			t.Fatalf("block %d says %d samples, holds %d", i, b.Samples, len(got)-before)
		}
	}
	if !slices.Equal(got, samples) {
		t.Fatal("blocks do not unpack to the samples")
	}
	text := AppendSignalText(nil, samples, true)
	if s.Samples != len(samples) || s.TextBytes != int64(len(text)) {
		t.Fatalf("signal %d samples, %d text bytes; want %d, %d", s.Samples, s.TextBytes, len(samples), len(text))
	}
	raw := make([]byte, 0, 4*len(samples))
	for _, v := range samples {
		raw = binary.LittleEndian.AppendUint32(raw, uint32(v))
	}
	if s.Hash != sha256.Sum256(raw) {
		t.Fatal("hash is not the SHA-256 of the little-endian samples")
	}
	// The writer is reused for the next lead with nothing left over.
	w := NewSignalWriter(nil, sink, 0, func() string { return "" })
	w2 := NewSignalWriter(w, sink, 4, func() string { return "" })
	if err := w2.Add(1); err != nil {
		t.Fatal(err)
	}
	if s2, _ := w2.Close(); s2.Samples != 1 || s2.TextBytes != 1 {
		t.Fatalf("reused writer: %+v", s2)
	}
}

// TestSignalWriterLimits: a sample outside int32 and the 1,000,001st sample are validation
// errors naming the lead and the index.
func TestSignalWriterLimits(t *testing.T) {
	w := NewSignalWriter(nil, &memSink{}, 2, func() string { return "V1" })
	for _, v := range []int64{math.MinInt32, math.MaxInt32} {
		if err := w.Add(v); err != nil {
			t.Fatalf("%d: %v", v, err)
		}
	}
	err := w.Add(math.MaxInt32 + 1)
	var ve *domain.ValidationError
	if !errors.As(err, &ve) || ve.Fields[0].Field != "leads[2].signal[2]" || !strings.Contains(ve.Fields[0].Message, `"V1"`) {
		t.Fatalf("out of range: %v", err)
	}
	if err := w.Add(math.MinInt32 - 1); err == nil {
		t.Fatal("below int32: want an error")
	}
	w = NewSignalWriter(nil, &memSink{}, 0, func() string { return "" })
	for range MaxSamples {
		if err := w.Add(0); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Add(0); !errors.As(err, &ve) || ve.Fields[0].Field != "leads[0].signal[1000000]" {
		t.Fatalf("sample past the limit: %v", err)
	}
}

var now = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// draft is a valid two-lead draft.
func draft(t *testing.T) Draft {
	t.Helper()
	return Draft{
		ID: "rec-1", IDSent: true, Date: ptr("2026-05-01T09:30:00.123456+02:00"),
		Leads: []LeadDraft{
			{Name: ptr("I"), Samples: ptr(int64(3)), Signal: write(t, &memSink{}, 0, []int32{1, 0, -1}), SignalSent: true},
			{Name: ptr("aVR"), Signal: write(t, &memSink{}, 1, []int32{5}), SignalSent: true},
		},
	}
}

func fields(err error) []string {
	var ve *domain.ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	var out []string
	for _, f := range ve.Fields {
		out = append(out, f.Field)
	}
	return out
}

func TestNewValid(t *testing.T) {
	e, err := New("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "owner", draft(t), now)
	if err != nil {
		t.Fatal(err)
	}
	if e.ID() != "rec-1" || e.Status() != StatusPending || len(e.Leads()) != 2 || e.TotalSamples() != 4 {
		t.Fatalf("ecg: %+v", e)
	}
	if want := time.Date(2026, 5, 1, 7, 30, 0, 123456000, time.UTC); !e.Date().Equal(want) || e.Date().Location() != time.UTC {
		t.Fatalf("date %v, want %v in UTC", e.Date(), want)
	}
	// Without an id, the key is the id.
	d := draft(t)
	d.ID, d.IDSent = "", false
	e2, err := New("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c", "owner", d, now)
	if err != nil || string(e2.ID()) != "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c" {
		t.Fatalf("assigned id: %v, %v", e2, err)
	}
	// Same content, other key and id: the same content hash; anything else differs.
	if !e.SameContent(e2) {
		t.Fatal("same date and leads must have the same content")
	}
	for name, change := range map[string]func(*Draft){
		"date":   func(d *Draft) { d.Date = ptr("2026-05-01T07:30:00.123457Z") },
		"name":   func(d *Draft) { d.Leads[1].Name = ptr("AVR") },
		"signal": func(d *Draft) { d.Leads[1].Signal = write(t, &memSink{}, 1, []int32{6}) },
		"order":  func(d *Draft) { d.Leads[0], d.Leads[1] = d.Leads[1], d.Leads[0] },
	} {
		d := draft(t)
		change(&d)
		other, err := New("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5d", "owner", d, now)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if e.SameContent(other) {
			t.Errorf("changing the %s kept the content hash", name)
		}
	}
}

// TestNewReportsEveryProblem: each rule of the contract, and all problems at once.
func TestNewReportsEveryProblem(t *testing.T) {
	for name, tc := range map[string]struct {
		change func(*Draft)
		fields []string
	}{
		"empty id":        {func(d *Draft) { d.ID = "" }, []string{"id"}},
		"long id":         {func(d *Draft) { d.ID = strings.Repeat("a", 65) }, []string{"id"}},
		"id charset":      {func(d *Draft) { d.ID = "a/b" }, []string{"id"}},
		"no date":         {func(d *Draft) { d.Date = nil }, []string{"date"}},
		"bad date":        {func(d *Draft) { d.Date = ptr("2026-05-01 09:30:00") }, []string{"date"}},
		"no zone":         {func(d *Draft) { d.Date = ptr("2026-05-01T09:30:00") }, []string{"date"}},
		"nanoseconds":     {func(d *Draft) { d.Date = ptr("2026-05-01T09:30:00.1234567Z") }, []string{"date"}},
		"before 1900":     {func(d *Draft) { d.Date = ptr("1899-12-31T23:59:59Z") }, []string{"date"}},
		"future":          {func(d *Draft) { d.Date = ptr("2026-05-02T12:00:01Z") }, []string{"date"}},
		"no leads":        {func(d *Draft) { d.Leads = nil }, []string{"leads"}},
		"17 leads":        {func(d *Draft) { d.Leads = make([]LeadDraft, 17) }, nil},
		"no name":         {func(d *Draft) { d.Leads[0].Name = nil }, []string{"leads[0].name"}},
		"long name":       {func(d *Draft) { d.Leads[0].Name = ptr(strings.Repeat("é", 17)) }, []string{"leads[0].name"}},
		"control in name": {func(d *Draft) { d.Leads[0].Name = ptr("V\x01") }, []string{"leads[0].name"}},
		"tab in name":     {func(d *Draft) { d.Leads[0].Name = ptr("V\t1") }, []string{"leads[0].name"}},
		"no-break space":  {func(d *Draft) { d.Leads[0].Name = ptr("V\u00a01") }, []string{"leads[0].name"}},
		"only spaces":     {func(d *Draft) { d.Leads[0].Name = ptr("   ") }, []string{"leads[0].name"}},
		"trailing space":  {func(d *Draft) { d.Leads[0].Name = ptr("I ") }, []string{"leads[0].name"}},
		"leading space":   {func(d *Draft) { d.Leads[1].Name = ptr(" aVR") }, []string{"leads[1].name"}},
		"zero width":      {func(d *Draft) { d.Leads[0].Name = ptr("V\u200b1") }, []string{"leads[0].name"}},
		"joiner":          {func(d *Draft) { d.Leads[0].Name = ptr("V\u200d1") }, []string{"leads[0].name"}},
		"hangul filler":   {func(d *Draft) { d.Leads[0].Name = ptr("\u3164") }, []string{"leads[0].name"}},
		"noncharacter":    {func(d *Draft) { d.Leads[0].Name = ptr("V\ufdd0") }, []string{"leads[0].name"}},
		"two forms of é": {func(d *Draft) { d.Leads[0].Name, d.Leads[1].Name = ptr("\u00e9"), ptr("e\u0301") },
			[]string{"leads[1].name"}},
		"é and É decomposed": {func(d *Draft) { d.Leads[0].Name, d.Leads[1].Name = ptr("\u00c9"), ptr("e\u0301") },
			[]string{"leads[1].name"}},
		"duplicate name":     {func(d *Draft) { d.Leads[1].Name = ptr("i") }, []string{"leads[1].name"}},
		"no signal":          {func(d *Draft) { d.Leads[0].SignalSent = false }, []string{"leads[0].signal"}},
		"empty signal":       {func(d *Draft) { d.Leads[0].Signal = Signal{} }, []string{"leads[0].signal"}},
		"samples mismatch":   {func(d *Draft) { d.Leads[0].Samples = ptr(int64(4)) }, []string{"leads[0].samples"}},
		"everything at once": {func(d *Draft) { d.ID, d.Date, d.Leads[1].Name = "", nil, ptr("I") }, []string{"id", "date", "leads[1].name"}},
	} {
		t.Run(name, func(t *testing.T) {
			d := draft(t)
			tc.change(&d)
			_, err := New("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "owner", d, now)
			if err == nil || domain.KindOf(err) != domain.KindInvalid {
				t.Fatalf("want a validation error, got %v", err)
			}
			if tc.fields != nil && !slices.Equal(fields(err), tc.fields) {
				t.Fatalf("fields %v, want %v (%v)", fields(err), tc.fields, err)
			}
		})
	}
	// A name of 16 characters, multi-byte ones included, is fine, and so are plain spaces
	// between words.
	for _, name := range []string{strings.Repeat("é", 16), "V 1", "lead  II"} {
		d := draft(t)
		d.Leads[0].Name = ptr(name)
		if _, err := New("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "owner", d, now); err != nil {
			t.Fatalf("name %q: %v", name, err)
		}
	}
}

// TestLeadNameMessages: a lead name with a space at either end, or with an invisible
// character, is refused with a message that names the lead and the problem; it is not
// trimmed, since "I " and "I" would otherwise be two leads that look alike.
func TestLeadNameMessages(t *testing.T) {
	for name, want := range map[string]string{
		"I ":       "leads[2].name must not begin or end with a space.",
		" V1":      "leads[2].name must not begin or end with a space.",
		"V1\u200b": "leads[2].name must not contain invisible or control characters (U+200B).",
		"\ufeffI":  "leads[2].name must not contain invisible or control characters (U+FEFF).",
		"I\u202e":  "leads[2].name must not contain invisible or control characters (U+202E).",
		"\u3164":   "leads[2].name must not contain invisible or control characters (U+3164).",
	} {
		err := ValidateLeadName(2, name)
		if err == nil || err.Error() != want {
			t.Errorf("ValidateLeadName(%+q) = %v, want %q", name, err, want)
		}
	}
}

// TestRepeatedLeadNameNamesTheFirstOfItsPosition: the message points at the lead's position in
// the upload, also when a lead before it was refused.
func TestRepeatedLeadNameNamesTheFirstOfItsPosition(t *testing.T) {
	d := draft(t)
	third := d.Leads[1]
	third.Name = ptr("AVR")
	d.Leads[0].Name = ptr("V\x01") // refused, so not among the names compared
	d.Leads = append(d.Leads, third)
	_, err := New("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "owner", d, now)
	if got := fields(err); !slices.Equal(got, []string{"leads[0].name", "leads[2].name"}) {
		t.Fatalf("fields %v, want leads[0] and leads[2] (%v)", got, err)
	}
	if !strings.Contains(err.Error(), "repeats the name of leads[1]") {
		t.Fatalf("%v, want it to point at leads[1]", err)
	}
}

// TestIDs: the contract's id alphabet, "." and ".." included.
func TestIDs(t *testing.T) {
	for _, id := range []string{"a", "A-1_b.c", ".", "..", strings.Repeat("z", 64)} {
		if !PlausibleID(id) {
			t.Errorf("%q refused", id)
		}
	}
	for _, id := range []string{"", "a b", "é", "a/b", "a%2F", strings.Repeat("z", 65)} {
		if PlausibleID(id) {
			t.Errorf("%q accepted", id)
		}
	}
}

func TestNumbers(t *testing.T) {
	for v, want := range map[float64]string{2.5: "2.5", -7: "-7", 1.0 / 3: "0.3333333333333333", 1e-7: "0.0000001"} {
		n, err := Float(v)
		if err != nil || n.String() != want {
			t.Errorf("Float(%v) = %q, %v; want %q", v, n, err, want)
		}
		if back, err := ParseNumber(n.String()); err != nil || back != n {
			t.Errorf("ParseNumber(%q) = %v, %v", n.String(), back, err)
		}
	}
	for _, v := range []float64{math.NaN(), math.Inf(1)} {
		if _, err := Float(v); err == nil {
			t.Errorf("Float(%v) accepted", v)
		}
	}
	for _, text := range []string{"", "twelve", "NaN", "Inf", "0x1p-2", "01", "1.", ".5", "+1", "1e", "-"} {
		if _, err := ParseNumber(text); err == nil {
			t.Errorf("ParseNumber accepted %q", text)
		}
	}
	for _, text := range []string{"0", "-0", "12", "-3.25", "1e-7", "2E+10", "0.0000001"} {
		if _, err := ParseNumber(text); err != nil {
			t.Errorf("ParseNumber refused %q: %v", text, err)
		}
	}
}

// TestParseDateFollowsRFC3339: section 5.6 of RFC 3339, not time.Parse's own rules, which
// took a comma before the fraction (and then dropped digits past the microsecond check) and
// offsets of 24:00, and refused lower-case "t" and "z" (outside probe).
func TestParseDateFollowsRFC3339(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]string{
		"2024-05-01T09:30:00Z":             "2024-05-01T09:30:00Z",
		"2024-05-01t09:30:00z":             "2024-05-01T09:30:00Z",
		"2024-05-01T09:30:00.5+02:00":      "2024-05-01T07:30:00.5Z",
		"2024-05-01T09:30:00.123456-23:59": "2024-05-02T09:29:00.123456Z",
		"2024-05-01T09:30:00.000000Z":      "2024-05-01T09:30:00Z",
	} {
		got, err := ParseDate(in, now)
		if err != nil || got.Format(time.RFC3339Nano) != want {
			t.Errorf("%q: %v, %v; want %s", in, got.Format(time.RFC3339Nano), err, want)
		}
	}
	for in, why := range map[string]string{
		"2024-05-01T09:30:00,5Z":            "RFC 3339",
		"2024-05-01T09:30:00,0000000001Z":   "RFC 3339",
		"2024-05-01T09:30:00.0000001Z":      "microsecond",
		"2024-05-01T09:30:00+24:00":         "RFC 3339",
		"2024-05-01T09:30:00-24:00":         "RFC 3339",
		"2024-05-01T09:30:00+02:60":         "RFC 3339",
		"2024-05-01T09:30:00+0200":          "RFC 3339",
		"2024-05-01T09:30:00.Z":             "RFC 3339",
		"2024-05-01 09:30:00Z":              "RFC 3339",
		"2024-05-01T24:00:00Z":              "RFC 3339",
		"2024-02-30T09:30:00Z":              "RFC 3339",
		"2024-05-01T09:30:00Zjunk":          "RFC 3339",
		"2016-12-31T23:59:60Z":              "leap second",
		"2024-05-01T09:30:00":               "RFC 3339",
		"+2024-05-01T09:30:00Z":             "RFC 3339",
		"1899-12-31T23:59:59Z":              "1900",
		"2024-05-01T09:30:00.123456789Z":    "microsecond",
		"２０２４-05-01T09:30:00Z":              "RFC 3339",
		"2024-05-01T09:30:00\u00a0Z":        "RFC 3339",
		"2024-05-01T09:30:00.1234567+01:00": "microsecond",
	} {
		if _, err := ParseDate(in, now); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("%q: %v, want refused (%s)", in, err, why)
		}
	}
}

// TestDateToleratesClocksAheadAndSaysBy: a device clock a day ahead is tolerated, and the
// refusal past it says how far ahead a date may be (not "in the future", which a date an
// hour ahead also is, and is accepted).
func TestDateToleratesClocksAheadAndSaysBy(t *testing.T) {
	d := draft(t)
	d.Date = ptr(now.Add(FutureTolerance - time.Second).Format(time.RFC3339))
	if _, err := New("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "owner", d, now); err != nil {
		t.Fatalf("a date just within the tolerance: %v", err)
	}
	d.Date = ptr(now.Add(FutureTolerance + time.Second).Format(time.RFC3339))
	_, err := New("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "owner", d, now)
	if err == nil || !strings.Contains(err.Error(), "must not be more than 24 hours in the future") {
		t.Fatalf("a date past the tolerance: %v, want a message that says 24 hours", err)
	}
}
