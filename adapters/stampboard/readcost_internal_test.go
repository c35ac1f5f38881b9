package stampboard

import (
	"context"
	"fmt"
	"hash/maphash"
	"testing"
	"time"

	"github.com/acme/postsvc/domain/identity"
)

func TestSharedDeadlineIsSharedAndRenewed(t *testing.T) {
	const timeout = 200 * time.Millisecond
	s := sharedDeadline{timeout: timeout}
	// Bounds measured around each call, so a slow machine cannot fail the test.
	within := func(ctx context.Context, before, after time.Time) {
		t.Helper()
		d, ok := ctx.Deadline()
		if !ok || d.Before(before.Add(timeout)) || d.After(after.Add(timeout)) {
			t.Fatalf("deadline %v, want the timeout after the call (%v to %v)", d, before.Add(timeout), after.Add(timeout))
		}
	}
	before := time.Now()
	a := s.get()
	after := time.Now()
	within(a, before, after)
	if b := s.get(); b != a && time.Since(after) < timeout*9/10 {
		t.Fatal("a second read at once got a context of its own")
	}
	time.Sleep(timeout * 19 / 20) // past the renewal point, 0.9 of the timeout after the call
	before = time.Now()
	c := s.get()
	after = time.Now()
	if c == a {
		t.Fatal("the context was not renewed with less than a tenth of the timeout left")
	}
	within(c, before, after)
}

func TestDecodeMemoNeverServesAnotherHash(t *testing.T) {
	d := decodeMemo{seed: maphash.MakeSeed()}
	read := func(user identity.UserID, m map[string]string) identity.Stamps {
		t.Helper()
		s, ok := d.stamps(user, m)
		if !ok {
			t.Fatalf("stamps(%s, %v) refused", user, m)
		}
		return s
	}
	one := map[string]string{seeded: "1", "posts": "3", "session": "7"}
	if got := read("u1", one); got != "posts=3;session=7" {
		t.Fatalf("got %q", got)
	}
	if got := read("u1", one); got != "posts=3;session=7" {
		t.Fatalf("again: got %q", got)
	}
	for _, m := range []map[string]string{
		{seeded: "1", "posts": "4", "session": "7"},                // a counter moved
		{seeded: "1", "posts": "3", "session": "7", "images": "1"}, // a scope was added
		{seeded: "1", "posts": "3"},                                // one is gone
	} {
		want := identity.StampsOf(mustCounters(t, m))
		if got := read("u1", m); got != want {
			t.Fatalf("after %v: got %q, want %q", m, got, want)
		}
	}
	if _, ok := d.stamps("u1", map[string]string{seeded: "1", "posts": "x"}); ok {
		t.Fatal("a counter that is not a number was accepted")
	}
	// Two users in one slot each get their own stamps.
	slot := func(u identity.UserID) uint64 { return maphash.String(d.seed, string(u)) % decodeSlots }
	other := identity.UserID("")
	for i := 0; other == ""; i++ {
		if u := identity.UserID(fmt.Sprintf("v%d", i)); slot(u) == slot("u1") {
			other = u
		}
	}
	two := map[string]string{seeded: "1", "posts": "3", "session": "7"}
	read("u1", one)
	if got := read(other, map[string]string{seeded: "1", "posts": "9"}); got != "posts=9" {
		t.Fatalf("the other user of the slot got %q", got)
	}
	if got := read("u1", two); got != "posts=3;session=7" {
		t.Fatalf("u1 after the other user of its slot got %q", got)
	}
}

func mustCounters(t *testing.T, m map[string]string) map[string]int64 {
	t.Helper()
	c, ok := decode(m)
	if !ok {
		t.Fatalf("decode(%v) refused", m)
	}
	return c
}
