package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// expectFieldMessage checks that r is a 422 validation problem whose errors hold field with a
// message that contains message, and returns that message.
func expectFieldMessage(t *testing.T, r response, field, message string) string {
	t.Helper()
	p := expectProblem(t, r, http.StatusUnprocessableEntity, "validation_failed")
	errs, _ := p["errors"].([]any)
	for _, e := range errs {
		if f, _ := e.(map[string]any); f["field"] == field {
			got, _ := f["message"].(string)
			if !strings.Contains(got, message) {
				t.Errorf("%s: message %q, want it to say %q", field, got, message)
			}
			return got
		}
	}
	t.Errorf("no error for %s, want one saying %q: %s", field, message, truncate(r.Body))
	return ""
}
