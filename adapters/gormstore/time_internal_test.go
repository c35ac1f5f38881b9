package gormstore

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// The fast parse must agree with time.Parse on the driver's layouts for every stored
// timestamp, and leave everything it does not fully understand to time.Parse.
func TestParseStoredTimeAgreesWithTimeParse(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	zones := []*time.Location{time.UTC, time.FixedZone("", 5*3600+30*60), time.FixedZone("", -8*3600)}
	for i := 0; i < 20000; i++ {
		want := time.Unix(rng.Int64N(1<<34)-1<<33, rng.Int64N(1e9)).In(zones[i%len(zones)])
		switch i % 4 {
		case 0:
			want = want.Truncate(time.Second)
		case 1:
			want = want.Truncate(time.Microsecond)
		}
		for _, layout := range storedTimeLayouts[:2] {
			s := want.Format(layout)
			got, ok := parseStoredTime(s)
			if !ok || !got.Equal(want) || got.Location() != time.UTC {
				t.Fatalf("parseStoredTime(%q) = %v, %v; want %v in UTC", s, got, ok, want)
			}
		}
		s := want.UTC().Format(storedTimeLayouts[0])
		if got, ok := parseStoredTime(strings.TrimSuffix(s, "+00:00") + "Z"); !ok || !got.Equal(want) {
			t.Fatalf("Z form of %q: %v, %v", s, got, ok)
		}
	}
	for _, s := range []string{
		"", "2026-12-04", "2026-12-04 11:25", "2026-12-04 11:25:47.", "2026-13-04 11:25:47",
		"2026-02-29 11:25:47", "2026-12-04 24:00:00", "2026-12-04 11:60:00", "2026-12-04 11:25:60",
		"2026-12-04 11:25:47+24:00", "2026-12-04 11:25:47+0000", "2026-12-04 11:25:47 +00:00",
		"2026-12-04 11:25:47.1234567891", "2026-12-04x11:25:47", "+026-12-04 11:25:47",
		"2026-12-04 11:25:47 +0000 UTC", "２026-12-04 11:25:47",
	} {
		if got, ok := parseStoredTime(s); ok {
			t.Errorf("parseStoredTime(%q) = %v: want it left to time.Parse", s, got)
		}
	}
}

func TestTimestampScan(t *testing.T) {
	want := time.Date(2026, 12, 4, 11, 25, 47, 123456000, time.UTC)
	for _, src := range []any{
		want, want.In(time.FixedZone("", 3600)), "2026-12-04 11:25:47.123456+00:00", []byte("2026-12-04T12:25:47.123456+01:00"),
		"2026-12-04 11:25:47.123456Z", "2026-12-04 11:25:47.123456", "2026-12-04T11:25:47.123456",
	} {
		var ts Timestamp
		if err := ts.Scan(src); err != nil || !ts.T.Equal(want) || ts.T.Location() != time.UTC {
			t.Errorf("Scan(%v) = %v, %v; want %v in UTC", src, ts.T, err, want)
		}
	}
	for _, src := range []any{nil, 42, "yesterday", "2026-02-30 00:00:00"} {
		var ts Timestamp
		if err := ts.Scan(src); err == nil {
			t.Errorf("Scan(%v) = %v, want an error", src, ts.T)
		}
	}
}
