package stampboard_test

import (
	"fmt"
	"testing"

	"github.com/acme/postsvc/adapters/stampboard"
	"github.com/acme/postsvc/domain/identity"
)

func TestLocalBoard(t *testing.T) {
	ctx := t.Context()
	b := stampboard.NewLocal(3)
	if _, ok := b.Read(ctx, "a"); ok {
		t.Fatal("an unknown user is vouched for")
	}
	b.Publish(ctx, "a", "posts=2")
	b.Publish(ctx, "a", "posts=1;auth=1")
	if s, ok := b.Read(ctx, "a"); !ok || s != "auth=1;posts=2" {
		t.Fatalf("Read = %q, %v; want auth=1;posts=2 (counters only move forward)", s, ok)
	}
	gen := b.Generation()
	for i := range 3 {
		b.Publish(ctx, identity.UserID(fmt.Sprint("u", i)), "posts=1")
	}
	if b.Generation() == gen {
		t.Fatal("the board went past its bound without starting again under a new generation")
	}
	if _, ok := b.Read(ctx, "a"); ok {
		t.Fatal("a user forgotten by the restart is still vouched for")
	}
}
