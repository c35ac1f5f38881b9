package mediahttp

import (
	"mime"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func TestContentDispositionCannotBeBroken(t *testing.T) {
	for _, name := range []string{
		"photo.jpg",
		`quote".jpg`,
		"semi;colon=x.jpg",
		"Café ☕.png",
		`back\slash.gif`,
		"tab\there.png",
	} {
		d := contentDisposition(name)
		if strings.ContainsAny(d, "\r\n") {
			t.Fatalf("%q: header value %q holds a line break", name, d)
		}
		kind, params, err := mime.ParseMediaType(d)
		if err != nil || kind != "inline" || params["filename"] != name || len(params) != 1 {
			t.Errorf("%q: %q parses as %q %v (%v), want inline with the same file name and nothing else", name, d, kind, params, err)
		}
	}
	if d := contentDisposition("line\r\nX-Evil: 1"); strings.ContainsAny(d, "\r\n") {
		t.Fatalf("a name with a line break gave %q", d)
	}
}

// TestByteRanges: a Range header is ignored on another method than GET, in another unit than
// bytes, or when it is not a valid byte range set (RFC 9110 section 14.2); a valid one is
// unsatisfiable when none of its ranges selects a byte (section 14.1.2), and otherwise handed
// to http.ServeContent cut to the content, in a syntax its parser reads alike.
func TestByteRanges(t *testing.T) {
	const size = 100
	for header, want := range map[string]struct {
		kind   int
		header string
	}{
		"":                             {rangeNone, ""},
		"bytes=0-0":                    {rangeSelects, "bytes=0-0"},
		"bytes=99-":                    {rangeSelects, "bytes=99-99"},
		"bytes=10-5000":                {rangeSelects, "bytes=10-99"},
		"bytes=-1":                     {rangeSelects, "bytes=99-99"},
		"bytes=-500":                   {rangeSelects, "bytes=0-99"},
		"bytes=100-,0-0":               {rangeSelects, "bytes=0-0"},
		"bytes=-0,1-2":                 {rangeSelects, "bytes=1-2"},
		"bytes= 1-2 , 3-4":             {rangeSelects, "bytes=1-2,3-4"},
		"bytes=,1-2,":                  {rangeSelects, "bytes=1-2"},
		"BYTES=1-2":                    {rangeSelects, "bytes=1-2"},
		"bytes=007-8":                  {rangeSelects, "bytes=7-8"},
		"bytes=1-99999999999999999999": {rangeSelects, "bytes=1-99"},
		"bytes=-99999999999999999999":  {rangeSelects, "bytes=0-99"},
		"bytes=100-":                   {rangeSelectsNothing, ""},
		"bytes=100-200":                {rangeSelectsNothing, ""},
		"bytes=999999999-":             {rangeSelectsNothing, ""},
		"bytes=99999999999999999999-":  {rangeSelectsNothing, ""},
		"bytes=-0":                     {rangeSelectsNothing, ""},
		"bytes=-0,100-":                {rangeSelectsNothing, ""},
		"items=0-1":                    {rangeIgnored, ""},
		"pages=1-2":                    {rangeIgnored, ""},
		"bytes":                        {rangeIgnored, ""},
		"garbage":                      {rangeIgnored, ""},
		"bytes=":                       {rangeIgnored, ""},
		"bytes=,":                      {rangeIgnored, ""},
		"bytes=abc":                    {rangeIgnored, ""},
		"bytes=5-2":                    {rangeIgnored, ""},
		"bytes=x-y":                    {rangeIgnored, ""},
		"bytes=1":                      {rangeIgnored, ""},
		"bytes=+1-2":                   {rangeIgnored, ""},
		"bytes=1-+2":                   {rangeIgnored, ""},
		"bytes=--1":                    {rangeIgnored, ""},
		"bytes=-":                      {rangeIgnored, ""},
		"bytes=0 - 1":                  {rangeIgnored, ""},
		"bytes =0-1":                   {rangeIgnored, ""},
		"bytes=0-1,abc":                {rangeIgnored, ""},
		"bytes=100-,5-2":               {rangeIgnored, ""},
		"bytes=1-2=3":                  {rangeIgnored, ""},
		"bytes=0x10-":                  {rangeIgnored, ""},
		"bytes=\u0661-2":               {rangeIgnored, ""},
	} {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		if header != "" {
			r.Header.Set("Range", header)
		}
		if got, kind := byteRanges(r, size); kind != want.kind || got != want.header {
			t.Errorf("Range %q of %d bytes: %d %q, want %d %q", header, size, kind, got, want.kind, want.header)
		}
	}
	// Range handling is defined for GET only: HEAD (and any other method) ignores it.
	r, _ := http.NewRequest(http.MethodHead, "/", nil)
	r.Header.Set("Range", "bytes=100-")
	if _, kind := byteRanges(r, size); kind != rangeIgnored {
		t.Errorf("a Range on HEAD: %d, want ignored", kind)
	}
	// Range is a singleton field: two are not a valid range set.
	r, _ = http.NewRequest(http.MethodGet, "/", nil)
	r.Header.Add("Range", "bytes=0-1")
	r.Header.Add("Range", "bytes=2-3")
	if _, kind := byteRanges(r, size); kind != rangeIgnored {
		t.Errorf("two Range fields: %d, want ignored", kind)
	}
	// Content that is empty has no byte to select.
	r.Header.Set("Range", "bytes=0-")
	if _, kind := byteRanges(r, 0); kind != rangeSelectsNothing {
		t.Errorf("a range of empty content: %d, want unsatisfiable", kind)
	}
}

// TestByteRangesIgnoresAmplifyingSets: a range set of more than maxByteRanges selecting
// ranges, or of ranges that overlap, is ignored (RFC 9110 section 14.2); ranges that select
// nothing are not counted, and up to maxByteRanges disjoint ones are served as ranges.
func TestByteRangesIgnoresAmplifyingSets(t *testing.T) {
	const size = 1000
	spread := func(count int) string {
		specs := make([]string, count)
		for i := range specs {
			specs[i] = strconv.Itoa(2*i) + "-" + strconv.Itoa(2*i)
		}
		return "bytes=" + strings.Join(specs, ",")
	}
	for header, want := range map[string]int{
		spread(maxByteRanges):                                rangeSelects,
		spread(maxByteRanges + 1):                            rangeIgnored,
		spread(maxByteRanges) + strings.Repeat(",5000-", 50): rangeSelects,
		"bytes=" + strings.Repeat("0-0,", 15000) + "0-0":     rangeIgnored,
		"bytes=0-0,0-0":                                      rangeIgnored,
		"bytes=0-9,9-20":                                     rangeIgnored,
		"bytes=10-19,0-10":                                   rangeIgnored,
		"bytes=-5,996-":                                      rangeIgnored,
		"bytes=0-,500-501":                                   rangeIgnored,
		"bytes=0-9,10-19":                                    rangeSelects,
		"bytes=10-19,0-9":                                    rangeSelects,
		"bytes=-5,0-0":                                       rangeSelects,
	} {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Range", header)
		if _, kind := byteRanges(r, size); kind != want {
			t.Errorf("Range %.60q (%d bytes) of %d bytes: %d, want %d", header, len(header), size, kind, want)
		}
	}
}
