package mediahttp

import (
	"mime"
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
