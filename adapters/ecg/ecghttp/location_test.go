package ecghttp

import (
	"net/url"
	"testing"
)

// TestLocationSurvivesReferenceResolution: the Location of every id, resolved against the
// upload's URL as clients do (RFC 3986 section 5.2), names the same id, dot-only ids included.
func TestLocationSurvivesReferenceResolution(t *testing.T) {
	base, err := url.Parse("http://h/api/v1/ecgs")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{".", "..", "...", "a.b", "..a", "x_y-Z.9"} {
		ref, err := url.Parse(location(id))
		if err != nil {
			t.Fatalf("%q: %v", id, err)
		}
		got := base.ResolveReference(ref)
		if got.Path != "/api/v1/ecgs/"+id {
			t.Errorf("id %q: Location %q resolves to %q", id, location(id), got.Path)
		}
	}
}
