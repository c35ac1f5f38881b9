package mediahttp

import (
	"mime"
	"net/http"
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

// TestSatisfiable: the Range headers answered 416 here (as a problem document) are those
// RFC 9110 section 14.1 makes unsatisfiable or invalid; the rest go to http.ServeContent.
func TestSatisfiable(t *testing.T) {
	const size = 100
	for header, want := range map[string]bool{
		"":                 true,
		"bytes=0-0":        true,
		"bytes=99-":        true,
		"bytes=10-5000":    true,
		"bytes=-1":         true,
		"bytes=-500":       true,
		"bytes=100-,0-0":   true,
		"bytes= 1-2 , 3-4": true,
		"bytes=100-":       false,
		"bytes=100-200":    false,
		"bytes=-0":         false,
		"bytes=5-2":        false,
		"bytes=x-y":        false,
		"bytes=1":          false,
		"bytes=+1-2":       false,
		"bytes=1-+2":       false,
		"bytes=--1":        false,
		"bytes=-":          false,
		"pages=1-2":        false,
		"bytes=,":          false,
	} {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		if header != "" {
			r.Header.Set("Range", header)
		}
		if got := satisfiable(r, size); got != want {
			t.Errorf("Range %q of %d bytes: satisfiable %v, want %v", header, size, got, want)
		}
	}
	// A conditional request is left to ServeContent (If-Range may turn the range off).
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Range", "bytes=-0")
	r.Header.Set("If-Range", `"etag"`)
	if !satisfiable(r, size) {
		t.Error("a Range under If-Range was judged here")
	}
}
