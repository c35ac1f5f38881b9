package supervisor_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/postsvc/adapters/supervisor"
	"github.com/acme/postsvc/test/fakes"
)

func newSupervisor() (*supervisor.Supervisor, *fakes.LogBuffer) {
	logs := &fakes.LogBuffer{}
	s := supervisor.New(slog.New(slog.NewTextHandler(logs, nil)), supervisor.Settings{
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 80 * time.Millisecond, StableAfter: time.Hour,
	})
	return s, logs
}

// start runs s with components. finished is closed when Run has returned, and result then
// returns its error; stop cancels the context and waits for that.
func start(t *testing.T, s *supervisor.Supervisor, components ...supervisor.Component) (finished <-chan struct{}, result func() error, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	var err error
	go func() {
		err = s.Run(ctx, components...)
		close(done)
	}()
	result = func() error { <-done; return err }
	stop = func() error {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return done, result, stop
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ticker is a healthy component: it counts ticks until its context ends, then stops after
// stopIn.
func ticker(ticks *atomic.Int64, stopped *atomic.Bool, stopIn time.Duration) func(context.Context) error {
	return func(ctx context.Context) error {
		for {
			select {
			case <-ctx.Done():
				time.Sleep(stopIn)
				stopped.Store(true)
				return nil
			case <-time.After(2 * time.Millisecond):
				ticks.Add(1)
			}
		}
	}
}

// TestFailingComponentIsRestartedAndOthersKeepRunning fails one component repeatedly (by error
// and by panic) and checks that it is restarted with growing waits and logged, while another
// component runs on undisturbed, and that a stop waits for both.
func TestFailingComponentIsRestartedAndOthersKeepRunning(t *testing.T) {
	s, logs := newSupervisor()
	var (
		mu     sync.Mutex
		starts []time.Time
	)
	flaky := func(context.Context) error {
		mu.Lock()
		starts = append(starts, time.Now())
		n := len(starts)
		mu.Unlock()
		if n%2 == 0 {
			panic("flaky bug")
		}
		return errors.New("flaky failure")
	}
	var ticks atomic.Int64
	var stopped atomic.Bool
	_, _, stop := start(t, s,
		supervisor.Component{Name: "flaky", Run: flaky},
		supervisor.Component{Name: "steady", Run: ticker(&ticks, &stopped, 100*time.Millisecond)},
	)
	eventually(t, "the flaky component has started 5 times", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(starts) >= 5
	})
	before := ticks.Load()
	time.Sleep(50 * time.Millisecond)
	if ticks.Load() == before {
		t.Fatal("the steady component stopped while the other one failed")
	}
	began := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("Run after a clean stop: %v", err)
	}
	if !stopped.Load() || time.Since(began) < 100*time.Millisecond {
		t.Fatal("Run returned before every component had stopped")
	}

	mu.Lock()
	defer mu.Unlock()
	// Waits of 20, 40, 80, 80 ms between the starts.
	for i, want := range []time.Duration{20, 40, 80, 80} {
		if gap := starts[i+1].Sub(starts[i]); gap < want*time.Millisecond {
			t.Errorf("restart %d came %s after the failure, want at least %dms", i+1, gap, want)
		}
	}
	out := logs.String()
	for _, want := range []string{"component=flaky", "flaky failure", "restart_in=", "component panicked", "flaky bug", "supervisor_test.go"} {
		if !strings.Contains(out, want) {
			t.Errorf("the logs lack %q:\n%s", want, out)
		}
	}
}

// TestEssentialFailureStopsEverything checks that an essential component's failure stops the
// others and is what Run returns.
func TestEssentialFailureStopsEverything(t *testing.T) {
	s, _ := newSupervisor()
	var ticks atomic.Int64
	var stopped atomic.Bool
	boom := errors.New("listener closed")
	var starts atomic.Int32
	finished, result, _ := start(t, s,
		supervisor.Component{Name: "http", Essential: true, Run: func(context.Context) error {
			starts.Add(1)
			time.Sleep(30 * time.Millisecond)
			return boom
		}},
		supervisor.Component{Name: "jobs", Run: ticker(&ticks, &stopped, 0)},
	)
	select {
	case <-finished:
		if err := result(); !errors.Is(err, boom) || !strings.Contains(err.Error(), "http") {
			t.Fatalf("Run = %v, want the essential component's error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not end when an essential component failed")
	}
	if !stopped.Load() {
		t.Fatal("the other component was not stopped")
	}
	if n := starts.Load(); n != 1 {
		t.Fatalf("the essential component was started %d times, want 1", n)
	}
}

// TestFinishedComponentIsNotRestarted checks that a component returning nil before shutdown
// has done its work and is left alone.
func TestFinishedComponentIsNotRestarted(t *testing.T) {
	s, logs := newSupervisor()
	var runs atomic.Int32
	_, _, stop := start(t, s, supervisor.Component{Name: "sweep-at-start", Run: func(context.Context) error {
		runs.Add(1)
		return nil
	}})
	eventually(t, "the component has finished", func() bool { return strings.Contains(logs.String(), "component finished") })
	time.Sleep(100 * time.Millisecond)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("ran %d times, want 1", n)
	}
}

// TestStopErrorsAreReturned checks that an error a component returns while stopping (a
// graceful shutdown that ran out of time) is returned, while a plain cancellation is not.
func TestStopErrorsAreReturned(t *testing.T) {
	s, _ := newSupervisor()
	late := errors.New("graceful shutdown did not finish")
	_, _, stop := start(t, s,
		supervisor.Component{Name: "http", Run: func(ctx context.Context) error { <-ctx.Done(); return late }},
		supervisor.Component{Name: "jobs", Run: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }},
	)
	time.Sleep(20 * time.Millisecond)
	err := stop()
	if !errors.Is(err, late) || strings.Contains(err.Error(), "jobs") {
		t.Fatalf("Run = %v, want only the http component's stop error", err)
	}
}

func TestComponentsNeedUniqueNamesAndRun(t *testing.T) {
	s, _ := newSupervisor()
	run := func(context.Context) error { return nil }
	for name, cs := range map[string][]supervisor.Component{
		"no name":   {{Run: run}},
		"no run":    {{Name: "a"}},
		"duplicate": {{Name: "a", Run: run}, {Name: "a", Run: run}},
	} {
		if err := s.Run(t.Context(), cs...); err == nil {
			t.Errorf("%s: Run accepted it", name)
		}
	}
}
