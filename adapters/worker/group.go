package worker

import (
	"context"
	"slices"
	"sync"
)

// Group is several runners run as one component, each with workers of its own for job kinds
// of its own: a burst of one context's jobs (analyses after many uploads) then never delays
// another's (user cleanups), and each pool is sized for its work.
type Group []*Runner

// Run runs every runner until ctx ends and they have all stopped.
func (g Group) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(g))
	for i, r := range g {
		wg.Go(func() { errs[i] = r.Run(ctx) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Notify wakes the runner that handles kind (see Runner.Notify); wire it to the queue's
// enqueue hook.
func (g Group) Notify(kind string) {
	for _, r := range g {
		if _, ok := r.handlers[kind]; ok {
			r.Notify()
		}
	}
}

// Kinds returns the job kinds the runners handle, sorted.
func (g Group) Kinds() []string {
	var out []string
	for _, r := range g {
		out = append(out, r.kinds...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Outcomes adds up the runners' settled attempts by kind and outcome (see Runner.Outcomes).
func (g Group) Outcomes() map[[2]string]int64 {
	out := map[[2]string]int64{}
	for _, r := range g {
		for k, n := range r.Outcomes() {
			out[k] += n
		}
	}
	return out
}
