package paging_test

import (
	"testing"

	"github.com/acme/postsvc/application/paging"
)

// FuzzCursor: any cursor a client sends decodes without panicking to either an error or an id
// the service could have issued, and such an id's cursor is the one sent (one spelling per
// position), so a forged cursor can never point between positions.
func FuzzCursor(f *testing.F) {
	for _, seed := range []string{
		"", paging.Encode("0190a1b2-0000-7000-8000-000000000001"), "zzzz", "%%%", "AAAA====",
		paging.Encode("0190a1b2-0000-7000-8000-00000000000"), paging.Encode("../../etc/passwd"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, cursor string) {
		id, err := paging.Decode(cursor)
		switch {
		case err != nil && id != "":
			t.Fatalf("%q: an error with id %q", cursor, id)
		case err != nil, cursor == "":
			return
		}
		if !paging.ValidID(id) || paging.Encode(id) != cursor {
			t.Fatalf("%q decoded to %q, which is not canonical or not a valid id", cursor, id)
		}
	})
}
