package postsgorm

import "testing"

// TestKeptIDsTake walks the second step of a list over rows that changed between the two
// statements: a post written in between is not kept (the page leaves it out), and a kept post
// deleted in between is passed over without losing the ones after it.
func TestKeptIDsTake(t *testing.T) {
	u := keptIDs{"e", "d", "c", "b"}
	for _, step := range []struct {
		row  string
		kept bool
	}{
		{"e", true},
		{"x", false}, // written in between
		{"c", true},  // d was deleted in between
		{"d", false}, // already passed over: never taken twice
		{"b", true},
		{"a", false}, // below the kept range
	} {
		if got := u.take(step.row); got != step.kept {
			t.Fatalf("take(%q) = %v, want %v (left %v)", step.row, got, step.kept, u)
		}
	}
	if len(u) != 0 {
		t.Fatalf("left %v, want none", u)
	}
}
