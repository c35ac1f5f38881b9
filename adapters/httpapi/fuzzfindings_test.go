package httpapi_test

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// Regression tests for what FuzzDecodeJSON found; each input is also in
// testdata/fuzz/FuzzDecodeJSON, which go test replays.

// TestNULIsNotABlankBody: a body holding a NUL byte is not JSON. It used to be read as an
// empty body (the blank check returned 0 for "nothing there"), so logout, whose body is
// optional, accepted "\x00" as if nothing had been sent, and signup answered it "empty".
func TestNULIsNotABlankBody(t *testing.T) {
	for _, body := range []string{"\x00", " \x00", "\x00{}", "\n\x00\n"} {
		hs := newHarness(t)
		for _, chunked := range []bool{false, true} {
			req := httptest.NewRequest("POST", "/api/v1/auth/logout", strings.NewReader(body))
			if chunked {
				req.ContentLength = -1
			}
			req.Header.Set("Authorization", "Bearer "+userToken)
			req.Header.Set("Content-Type", "application/json")
			p := assertProblem(t, hs.serve(req), 400, "malformed_request")
			if strings.Contains(p.Detail, "empty") {
				t.Errorf("logout %q (chunked %v): detail %q calls it empty", body, chunked, p.Detail)
			}
		}
		req := httptest.NewRequest("POST", "/api/v1/auth/signup", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if p := assertProblem(t, hs.serve(req), 400, "malformed_request"); strings.Contains(p.Detail, "empty") {
			t.Errorf("signup %q: detail %q calls it empty", body, p.Detail)
		}
		if n := hs.auth.count(); n != 0 {
			t.Fatalf("%q: the use cases ran %d times", body, n)
		}
	}
}
