package httpapi

import (
	"strings"
	"testing"
)

// FuzzBearerToken: any Authorization header value is split without panicking, and a token is
// handed to the credential schemes only when the scheme is Bearer (any case), the token is
// what follows it, non-empty, at most maxTokenLength bytes and free of white space.
func FuzzBearerToken(f *testing.F) {
	for _, seed := range []string{
		"Bearer abc", "bearer abc", "BEARER   abc", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz",
		"Bearer a b", "Bearer a\tb", "Bearer a\r\nX: y", "Bearer " + strings.Repeat("x", maxTokenLength+1),
		"Bearer pat_" + strings.Repeat("A", 43), "Bearerabc", " Bearer abc", "Bearer\tabc", "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		token, given, ok := bearerToken(header)
		scheme, _, _ := strings.Cut(header, " ")
		isBearer := strings.EqualFold(scheme, "Bearer")
		switch {
		case ok && !given:
			t.Fatalf("%q: accepted a token that was not given", header)
		case given && !isBearer:
			t.Fatalf("%q: a token given under scheme %q", header, scheme)
		case !ok && token != "":
			t.Fatalf("%q: refused but returned token %q", header, token)
		case !ok:
			return
		}
		if token == "" || len(token) > maxTokenLength || strings.ContainsAny(token, " \t\r\n") || !strings.HasSuffix(header, token) {
			t.Fatalf("%q: accepted token %q", header, token)
		}
	})
}
