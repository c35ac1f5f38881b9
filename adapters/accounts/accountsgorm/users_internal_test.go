package accountsgorm

import "testing"

func TestContainsPattern(t *testing.T) {
	for in, want := range map[string]string{
		"plain":  "%plain%",
		"100%":   "%100!%%",
		"a_b":    "%a!_b%",
		"hey!":   "%hey!!%",
		`back\s`: `%back\s%`,
		"'":      "%'%",
	} {
		if got := containsPattern(in); got != want {
			t.Errorf("containsPattern(%q) = %q, want %q", in, got, want)
		}
	}
}
