package httpapi

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// TestUTF8ReaderAcrossReadBoundaries feeds inputs one byte at a time and in odd chunks, so
// every multi-byte rune is split at every position.
func TestUTF8ReaderAcrossReadBoundaries(t *testing.T) {
	cases := []struct {
		name  string
		in    string
		valid bool
	}{
		{"ascii", `{"text":"hello"}`, true},
		{"two-byte", "é£ü", true},
		{"three-byte", "€漢字\uFFFD", true},
		{"four-byte", "😀🎉𝄞", true},
		{"mixed", "a€b😀cé", true},
		{"stray continuation", "ab\x80cd", false},
		{"invalid lead", "ab\xffcd", false},
		{"truncated at end", "ab\xe2\x82", false},
		{"interrupted rune", "a\xe2\x82b", false},
		{"overlong", "\xc0\xaf", false},
		{"surrogate", "\xed\xa0\x80", false},
	}
	readers := map[string]func(io.Reader) io.Reader{
		"one byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
		"whole":    func(r io.Reader) io.Reader { return r },
	}
	for _, tc := range cases {
		for rname, wrap := range readers {
			got, err := io.ReadAll(&utf8Reader{r: wrap(bytes.NewReader([]byte(tc.in)))})
			if tc.valid && (err != nil || string(got) != tc.in) {
				t.Errorf("%s/%s: got %q, %v; want the input back", tc.name, rname, got, err)
			}
			if !tc.valid && !errors.Is(err, errInvalidUTF8) {
				t.Errorf("%s/%s: err = %v, want errInvalidUTF8", tc.name, rname, err)
			}
		}
	}
}

func TestSaneRequestID(t *testing.T) {
	for id, want := range map[string]bool{
		"a": true, "A-b_c.9": true, "": false, "a b": false, "a\nb": false, "é": false,
	} {
		if saneRequestID(id) != want {
			t.Errorf("saneRequestID(%q) = %v, want %v", id, !want, want)
		}
	}
}
