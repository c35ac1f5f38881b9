package system

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestClockIsUTCAndCurrent(t *testing.T) {
	before := time.Now()
	now := NewClock().Now()
	after := time.Now()
	if now.Location() != time.UTC {
		t.Fatalf("Now() location = %v, want UTC", now.Location())
	}
	if now.Before(before.Truncate(time.Microsecond)) || now.After(after) {
		t.Fatalf("Now() = %v, want between %v and %v", now, before, after)
	}
}

func TestIDsAreStrictlyIncreasingV7(t *testing.T) {
	g := NewIDs()
	const n = 10_000
	prev := ""
	for i := range n {
		id := g.NewID()
		parsed, err := uuid.Parse(id)
		if err != nil {
			t.Fatalf("id %d %q does not parse: %v", i, id, err)
		}
		if parsed.Version() != 7 || parsed.Variant() != uuid.RFC4122 {
			t.Fatalf("id %q is version %d variant %v, want v7 RFC 4122", id, parsed.Version(), parsed.Variant())
		}
		if id <= prev {
			t.Fatalf("id %d %q is not greater than the previous %q", i, id, prev)
		}
		prev = id
	}
}

func TestIDsTimestampIsCreationTime(t *testing.T) {
	before := time.Now().Add(-time.Millisecond)
	id := uuid.MustParse(NewIDs().NewID())
	sec, nsec := id.Time().UnixTime()
	created := time.Unix(sec, nsec)
	if created.Before(before) || created.After(time.Now().Add(time.Millisecond)) {
		t.Fatalf("id time %v is not the creation time (about %v)", created, before)
	}
}

func TestIDsUniqueAcrossGoroutines(t *testing.T) {
	g := NewIDs()
	const workers, each = 8, 2_000
	results := make([][]string, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			prev := ""
			for range each {
				id := g.NewID()
				if id <= prev {
					t.Errorf("worker %d: %q not greater than %q", w, id, prev)
					return
				}
				prev = id
				results[w] = append(results[w], id)
			}
		})
	}
	wg.Wait()
	seen := make(map[string]bool, workers*each)
	for _, ids := range results {
		for _, id := range ids {
			if seen[id] {
				t.Fatalf("duplicate id %q", id)
			}
			seen[id] = true
		}
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("entropy source broken") }

func TestIDsFallBackWhenRandomnessFails(t *testing.T) {
	g := &IDs{random: failingReader{}}
	prev := ""
	for range 1_000 {
		id := g.NewID()
		parsed, err := uuid.Parse(id)
		if err != nil || parsed.Version() != 7 || parsed == uuid.Nil {
			t.Fatalf("fallback id %q: version %d, err %v", id, parsed.Version(), err)
		}
		if id <= prev {
			t.Fatalf("fallback id %q not greater than %q", id, prev)
		}
		prev = id
	}
}

func TestRuntimeRandomFillsOddLengths(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 16, 17} {
		buf := make([]byte, n)
		got, err := runtimeRandom{}.Read(buf)
		if err != nil || got != n {
			t.Fatalf("Read(%d bytes) = %d, %v", n, got, err)
		}
	}
}
