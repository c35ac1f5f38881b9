package paging_test

import (
	"testing"

	"github.com/acme/postsvc/application/paging"
)

func TestLimit(t *testing.T) {
	cases := map[int]struct {
		want int
		ok   bool
	}{0: {20, true}, 1: {1, true}, 100: {100, true}, 101: {0, false}, -1: {0, false}}
	for in, c := range cases {
		got, err := paging.Limit(in)
		if c.ok != (err == nil) || got != c.want {
			t.Errorf("Limit(%d) = %d, %v", in, got, err)
		}
	}
}

func TestCursorRoundTripAndGarbage(t *testing.T) {
	id := "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
	got, err := paging.Decode(paging.Encode(id))
	if err != nil || got != id {
		t.Fatalf("round trip: %q, %v", got, err)
	}
	for _, bad := range []string{"!!!", "%27%20OR%201=1", paging.Encode("a' OR 1=1 --"), string(make([]byte, 200))} {
		if _, err := paging.Decode(bad); err == nil {
			t.Errorf("Decode(%q) must fail", bad)
		}
	}
}
