package worker_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/postsvc/adapters/worker"
	"github.com/acme/postsvc/ports"
)

// TestGroupRunsEachPoolOnItsOwnWorkers: two runners of one group share a queue; a pool busy
// with slow jobs of its kind does not hold up the other pool's jobs, Notify wakes the runner
// of the kind (an idle poll of an hour never comes), and the outcomes add up.
func TestGroupRunsEachPoolOnItsOwnWorkers(t *testing.T) {
	e := newEnv()
	slow := fast()
	slow.Workers, slow.PollInterval = 1, time.Hour
	release := make(chan struct{})
	var quick atomic.Int32
	g := worker.Group{
		e.runner(t, slow, map[string]worker.Handler{"slow": func(ctx context.Context, _ ports.Job) error {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		}}),
		e.runner(t, slow, map[string]worker.Handler{"quick": func(context.Context, ports.Job) error {
			quick.Add(1)
			return nil
		}}),
	}
	if got := g.Kinds(); !slices.Equal(got, []string{"quick", "slow"}) {
		t.Fatalf("kinds %v", got)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	// An idle runner looks for work at doubling intervals from 20 ms: after 1.3 s of nothing,
	// its next look is over a second away, so only Notify can start a job sooner.
	time.Sleep(1300 * time.Millisecond)
	e.enqueue(t, ports.NewJob{Kind: "slow"})
	g.Notify("slow")
	notified := time.Now()
	for range 3 {
		e.enqueue(t, ports.NewJob{Kind: "quick"})
		g.Notify("quick")
	}
	eventually(t, "the quick pool's jobs done while the slow pool is busy", func() bool { return quick.Load() == 3 })
	if took := time.Since(notified); took > 600*time.Millisecond {
		t.Errorf("the jobs started %s after Notify: it did not wake their runner", took)
	}
	close(release)
	eventually(t, "outcomes counted", func() bool {
		o := g.Outcomes()
		return o[[2]string{"quick", "done"}] == 3 && o[[2]string{"slow", "done"}] == 1
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the group did not stop")
	}
}
