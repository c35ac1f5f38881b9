package ecghttp

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/acme/postsvc/domain/ecg/ecg"
)

// The reference decoder: json v2 with the service's options (httpapi's decodeOptions), into
// raw values whose types and bounds are checked here, the plain way.

var refOptions = jsonv2.JoinOptions(
	jsonv2.MatchCaseInsensitiveNames(false),
	jsonv2.RejectUnknownMembers(false),
	jsontext.AllowInvalidUTF8(false),
	jsontext.AllowDuplicateNames(false),
)

type refDoc struct {
	ID    jsontext.Value `json:"id"`
	Date  jsontext.Value `json:"date"`
	Leads jsontext.Value `json:"leads"`
}

type refLead struct {
	Name    jsontext.Value `json:"name"`
	Samples jsontext.Value `json:"samples"`
	Signal  jsontext.Value `json:"signal"`
}

// refOutcome is what the reference makes of a body.
type refOutcome struct {
	// invalid: not JSON, a wrong type for a known member, or nested too deep (400, though
	// decodeECG may meet a 422 first).
	invalid bool
	why     string
	// unprocessable: well-formed, with a value the ECG cannot hold (422).
	unprocessable bool
	draft         ecg.Draft
	samples       [][]int32
}

var lexicalInteger = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

func refDecode(body []byte) (out refOutcome) {
	invalid := func(why string) refOutcome { return refOutcome{invalid: true, why: why} }
	// The service refuses a body that is not an object before decoding it (json v2 takes
	// null for an empty struct).
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' {
		return invalid("not an object")
	}
	var doc refDoc
	if err := jsonv2.Unmarshal(body, &doc, refOptions); err != nil {
		return invalid(err.Error())
	}
	if refDepth(body) > maxDepth {
		return invalid("too deep")
	}
	str := func(v jsontext.Value, limit int) (*string, bool) {
		if v == nil {
			return nil, true
		}
		if v.Kind() != '"' {
			return nil, false
		}
		var s string
		if err := jsonv2.Unmarshal(v, &s); err != nil {
			panic(err)
		}
		if len(s) > limit {
			out.unprocessable = true
		}
		return &s, true
	}
	id, ok := str(doc.ID, maxIDBytes)
	if !ok {
		return invalid("id type")
	}
	if id != nil {
		out.draft.ID, out.draft.IDSent = *id, true
	}
	if out.draft.Date, ok = str(doc.Date, maxDateBytes); !ok {
		return invalid("date type")
	}
	if doc.Leads == nil {
		return out
	}
	var leads []jsontext.Value
	if doc.Leads.Kind() != '[' || jsonv2.Unmarshal(doc.Leads, &leads) != nil {
		return invalid("leads type")
	}
	out.draft.Leads = []ecg.LeadDraft{}
	if len(leads) > ecg.MaxLeads {
		out.unprocessable = true
	}
	for _, raw := range leads {
		var l refLead
		if raw.Kind() != '{' || jsonv2.Unmarshal(raw, &l, refOptions) != nil {
			return invalid("lead type")
		}
		var lead ecg.LeadDraft
		if lead.Name, ok = str(l.Name, maxLeadNameBytes); !ok {
			return invalid("name type")
		}
		if l.Samples != nil {
			if l.Samples.Kind() != '0' {
				return invalid("samples type")
			}
			n, err := strconv.ParseInt(string(l.Samples), 10, 64)
			if !lexicalInteger.Match(l.Samples) || err != nil || n < 0 || n > ecg.MaxSamples {
				out.unprocessable = true
			}
			lead.Samples = &n
		}
		var samples []int32
		if l.Signal != nil {
			var values []jsontext.Value
			if l.Signal.Kind() != '[' || jsonv2.Unmarshal(l.Signal, &values) != nil {
				return invalid("signal type")
			}
			if len(values) > ecg.MaxSamples {
				out.unprocessable = true
			}
			for _, v := range values {
				if v.Kind() != '0' {
					return invalid("sample type")
				}
				n, err := strconv.ParseInt(string(v), 10, 32)
				if !lexicalInteger.Match(v) || err != nil {
					out.unprocessable = true
				}
				samples = append(samples, int32(n))
			}
			lead.SignalSent = true
			lead.Signal = signalSummary(samples)
		}
		out.draft.Leads = append(out.draft.Leads, lead)
		out.samples = append(out.samples, samples)
	}
	return out
}

// refDepth is the deepest nesting of arrays and objects in a valid body, its object being 1.
func refDepth(body []byte) int {
	dec := jsontext.NewDecoder(bytes.NewReader(body), refOptions)
	deepest := 0
	for {
		if _, err := dec.ReadToken(); err != nil {
			return deepest
		}
		deepest = max(deepest, dec.StackDepth())
	}
}

// fuzzSeeds are valid and tricky bodies.
func fuzzSeeds() []string {
	seeds := []string{
		string(ecgBody(2, 20)),
		string(ecgBody(1, 3)),
		spaceOut(string(ecgBody(2, 4))),
		`{"id":"a-1","date":"2024-05-01T09:30:00Z","leads":[{"name":"I","samples":3,"signal":[1,-2,3]}]}`,
		`{"leads":[{"signal":[1,2],"name":"II"},{"samples":0,"signal":[]}],"date":"x","id":""}`,
		`{"leads":[{"signal":[0,-0,2147483647,-2147483648]}]}`,
		`{"leads":[{"signal":[2147483648]}]}`,
		`{"leads":[{"signal":[-2147483649]}]}`,
		`{"leads":[{"signal":[99999999999999999999999]}]}`,
		`{"leads":[{"signal":[1.5,1e3,1.0,-0.0,1E+2,0e0]}]}`,
		`{"leads":[{"signal":[01,+1,-,1.,.5,1e,1e+]}]}`,
		`{"leads":[{"signal":[1,]}]}`,
		`{"leads":[{"signal":[1 2]}]}`,
		`{"leads":[{"signal":["1",null,true,{},[]]}]}`,
		`{"leads":[{"samples":1.5},{"samples":-1},{"samples":1000001},{"samples":"3"},{"samples":null}]}`,
		`{"leads":[{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}]}`,
		`{"leads":[{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},"x"]}`,
		`{"leads":[{"name":null}]}`,
		`{"id":null,"date":5,"leads":{}}`,
		`{"id":"\u0041\u00e9\ud83d\ude00\n\t\"\\\/\b\f\r"}`,
		`{"id":"\ud800"}`,
		`{"id":"\udc00\ud800"}`,
		`{"x":"\ud800\u0041"}`,
		"{\"id\":\"\xff\"}",
		"{\"x\":[\"\xed\xa0\x80\",\"\xc0\xaf\",\"\xf4\x90\x80\x80\"]}",
		"{\"x\":\"\t\"}",
		`{"x":"\x"}`,
		`{"x":"\'","y":"\a","z":"\U0041","w":"\u00"}`,
		`{"id":"a","id":"b"}`,
		`{"id":"a","\u0069d":"b"}`,
		`{"leads":[{"signal":[1],"signal":[2]}]}`,
		`{"x":{"a":1,"b":{"a":{"a":[{"a":1,"a":2}]}}}}`,
		`{"` + strings.Repeat("n", 70) + `":1,"` + strings.Repeat("n", 70) + `":2}`,
		`{"id":"` + strings.Repeat("a", 65) + `"}`,
		`{"date":"` + strings.Repeat(`\u0031`, 64) + `"}`,
		`{"leads":[{"name":"` + strings.Repeat("é", 33) + `"}]}`,
		`{"x":` + strings.Repeat("[", 63) + strings.Repeat("]", 63) + `}`,
		`{"x":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + `}`,
		`{"a":[true,false,null,-1.5e-7,"s",{"b":[]}],"leads":[{"c":{"signal":"no"},"signal":[7]}]}`,
		`{"ID":"case","Leads":5,"leads ":1}`,
		"\ufeff{}",
		" {} ",
		"{} {}",
		"{}x",
		"[]",
		"null",
		" 5 ",
		"",
		`{"id":"a"`,
		`{"leads":[{"signal":[1,2`,
	}
	return seeds
}

func FuzzDecodeECG(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		want := refDecode(body)
		sink := &memSink{}
		got, err := decodeECG(bytes.NewReader(body), sink)
		class := classOf(err)
		if class == -1 {
			t.Fatalf("error of no class: %v (%T)", err, err)
		}
		switch {
		case want.invalid:
			if err == nil {
				t.Fatalf("accepted a body the reference refuses (%s): %v", want.why, draftView(got))
			}
		case want.unprocessable:
			if class != 422 {
				t.Fatalf("error %v, want a 422", err)
			}
		default:
			if err != nil {
				t.Fatalf("refused a body the reference accepts: %v", err)
			}
			if draftView(got) != draftView(want.draft) {
				t.Fatalf("draft\n%v\nwant\n%v", draftView(got), draftView(want.draft))
			}
			signals := sink.signals(t)
			for i, samples := range want.samples {
				if !slices.Equal(signals[i], samples) {
					t.Fatalf("lead %d: blocks hold %v, want %v", i, signals[i], samples)
				}
			}
		}
		// Read a byte at a time, the same body gives the same outcome.
		got1, err1 := decodeECG(iotest.OneByteReader(bytes.NewReader(body)), &memSink{})
		if errText(err1) != errText(err) || draftView(got1) != draftView(got) {
			t.Fatalf("a byte at a time: %v %v; whole: %v %v", err1, draftView(got1), err, draftView(got))
		}
		// Cut short by a read error, it fails with that error or one of its own.
		cut := len(body) / 2
		errCut := errors.New("cut")
		_, errc := decodeECG(io.MultiReader(bytes.NewReader(body[:cut]), iotest.ErrReader(errCut)), &memSink{})
		if errc == nil || classOf(errc) == -1 && !errors.Is(errc, errCut) {
			t.Fatalf("cut short: %v", errc)
		}
	})
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
