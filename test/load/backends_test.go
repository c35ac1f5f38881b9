package main

import (
	"strings"
	"testing"
)

// TestPrincipalsNoteNamesRedisFailures checks that a scenario whose principals were partly
// read from the database says how many Redis calls failed meanwhile, and that one without
// failures says nothing about Redis.
func TestPrincipalsNoteNamesRedisFailures(t *testing.T) {
	r := result{PrincipalsKnown: true, PrincipalHits: 78, PrincipalMisses: 145, RedisFailures: 12}
	if got := principalsNote(r); !strings.Contains(got, "35.0% from memory (78 of 223)") || !strings.Contains(got, "12 Redis call(s) failed") {
		t.Fatalf("principalsNote = %q", got)
	}
	r.RedisFailures = 0
	if got := principalsNote(r); strings.Contains(got, "Redis") {
		t.Fatalf("principalsNote without failures = %q", got)
	}
	if got := merge(result{RedisFailures: 2}, result{RedisFailures: 3}); got.RedisFailures != 5 {
		t.Fatalf("merged RedisFailures = %d, want 5", got.RedisFailures)
	}
}
