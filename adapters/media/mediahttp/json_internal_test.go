package mediahttp

import (
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
)

// TestChangeJSONRefusesNull: a PATCH body's field that is present must be of its type; null
// is not (400, as for every string field of the API), while an absent field changes nothing
// and an empty tags array clears the tags.
func TestChangeJSONRefusesNull(t *testing.T) {
	for body, want := range map[string]string{
		`{"visibility": null}`:           `Field "visibility" must be a string.`,
		`{"description": null}`:          `Field "description" must be a string.`,
		`{"tags": null}`:                 `Field "tags" must be an array of strings.`,
		`{"tags": [null]}`:               `Field "tags" must be an array of strings.`,
		`{"tags": ["a", null]}`:          `Field "tags" must be an array of strings.`,
		`{"tags": "a"}`:                  `Field "tags" must be an array of strings.`,
		`{"visibility": "public"}`:       "",
		`{"tags": []}`:                   "",
		`{"tags": ["a", "b"]}`:           "",
		`{}`:                             "",
		`{"description": "", "x": null}`: "",
	} {
		var b changeJSON
		if err := jsonv2.Unmarshal([]byte(body), &b); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		d, problem := b.draft()
		if problem != want {
			t.Errorf("%s: %q, want %q", body, problem, want)
		}
		if body == `{"tags": []}` && (d.Tags == nil || len(*d.Tags) != 0) {
			t.Errorf("%s: tags %v, want an empty list", body, d.Tags)
		}
		if body == `{}` && (d.Visibility != nil || d.Description != nil || d.Tags != nil) {
			t.Errorf("%s: %+v, want no change", body, d)
		}
	}
}
