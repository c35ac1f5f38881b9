package worker

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	for _, c := range []struct {
		attempt int
		jitter  float64
		want    time.Duration
	}{
		{1, 0, time.Second},
		{2, 0, 2 * time.Second},
		{3, 0, 4 * time.Second},
		{10, 0, 512 * time.Second},
		{11, 0, 10 * time.Minute}, // 1024 s capped
		{100, 0, 10 * time.Minute},
		{1, 0.5, 750 * time.Millisecond},
		{3, 0.999, 2*time.Second + 2*time.Millisecond}, // never below half
	} {
		if got := backoff(c.attempt, time.Second, 10*time.Minute, c.jitter); got != c.want {
			t.Errorf("backoff(attempt %d, jitter %v) = %s, want %s", c.attempt, c.jitter, got, c.want)
		}
	}
}
