// Package supervisor runs the long-lived parts of the process (the HTTP server, job workers)
// under one lifecycle: each runs until the process stops; one that fails or panics is logged
// and restarted with backoff instead of taking the others down; and when the context ends,
// every one is asked to stop and Run returns once all have.
//
// The package is not called runtime, the name the lifecycle has in some layouts, because it
// would shadow the standard library's runtime package in every file that imports both.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"
)

// Component is one long-lived part of the process.
type Component struct {
	// Name identifies the component in logs; unique within one Run.
	Name string
	// Run does the component's work until ctx ends, then stops (in its own time, for a
	// graceful shutdown) and returns. A non-nil error before ctx ends is a failure; nil means
	// the component has nothing more to do and is not restarted.
	Run func(ctx context.Context) error
	// Essential makes a failure of this component end the whole Run, with its error, instead
	// of restarting it: for a part without which the process should rather exit and be
	// restarted by its orchestrator.
	Essential bool
}

// Settings tune restarts. Zero values take the defaults named.
type Settings struct {
	// MinBackoff is the wait before restarting a component after its first failure, doubled
	// after each further failure in a row up to MaxBackoff. Defaults 1s and 1m.
	MinBackoff, MaxBackoff time.Duration
	// StableAfter is how long a component must have run for its next failure to count as the
	// first in a row again; default 1m.
	StableAfter time.Duration
}

// Defaults of Settings.
const (
	defaultMinBackoff  = time.Second
	defaultMaxBackoff  = time.Minute
	defaultStableAfter = time.Minute
)

// Supervisor runs components; see the package documentation.
type Supervisor struct {
	log *slog.Logger
	s   Settings
}

// New returns a supervisor that logs to logger.
func New(logger *slog.Logger, s Settings) *Supervisor {
	if s.MinBackoff <= 0 {
		s.MinBackoff = defaultMinBackoff
	}
	if s.MaxBackoff <= 0 {
		s.MaxBackoff = defaultMaxBackoff
	}
	s.MaxBackoff = max(s.MaxBackoff, s.MinBackoff)
	if s.StableAfter <= 0 {
		s.StableAfter = defaultStableAfter
	}
	return &Supervisor{log: logger, s: s}
}

// essentialFailure is the cause with which Run stops every component when an essential one
// fails.
type essentialFailure struct{ err error }

func (e essentialFailure) Error() string { return e.err.Error() }
func (e essentialFailure) Unwrap() error { return e.err }

// Run runs every component until ctx ends, restarting those that fail, and returns once all of
// them have returned. It returns nil after a clean stop; the failure of an essential component,
// after stopping the others; or the errors that components returned while stopping (such as a
// graceful shutdown that ran out of time), joined.
func (s *Supervisor) Run(ctx context.Context, components ...Component) error {
	seen := map[string]bool{}
	for _, c := range components {
		if c.Name == "" || c.Run == nil || seen[c.Name] {
			return fmt.Errorf("supervisor: every component needs a unique name and a Run function (got %q)", c.Name)
		}
		seen[c.Name] = true
	}
	ctx, stopAll := context.WithCancelCause(ctx)
	defer stopAll(nil)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		stopErrs []error
	)
	for _, c := range components {
		wg.Go(func() {
			if err := s.supervise(ctx, stopAll, c); err != nil {
				mu.Lock()
				stopErrs = append(stopErrs, fmt.Errorf("%s: %w", c.Name, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	var failure essentialFailure
	if errors.As(context.Cause(ctx), &failure) {
		return errors.Join(append([]error{failure.err}, stopErrs...)...)
	}
	return errors.Join(stopErrs...)
}

// supervise runs c, restarting it after failures, until ctx ends or c finishes. It returns the
// error c returned while stopping, if any.
func (s *Supervisor) supervise(ctx context.Context, stopAll context.CancelCauseFunc, c Component) error {
	log := s.log.With("component", c.Name)
	delay := s.s.MinBackoff
	for start := 1; ; start++ {
		if start > 1 {
			log.Info("component restarting", "start", start)
		}
		began := time.Now()
		err := s.runOnce(ctx, log, c)
		if ctx.Err() != nil {
			// Stopping: an error now is about the stop itself, unless it only reports the
			// cancellation.
			if err != nil && !errors.Is(err, context.Canceled) {
				log.Error("component did not stop cleanly", "err", err)
				return err
			}
			return nil
		}
		if err == nil {
			log.Info("component finished")
			return nil
		}
		if c.Essential {
			log.Error("essential component failed: stopping every component", "err", err)
			stopAll(essentialFailure{fmt.Errorf("%s: %w", c.Name, err)})
			return nil
		}
		if time.Since(began) >= s.s.StableAfter {
			delay = s.s.MinBackoff
		}
		log.Error("component failed; restarting it", "err", err, "restart_in", delay)
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
		delay = min(2*delay, s.s.MaxBackoff)
	}
}

// runOnce runs c once, turning a panic into an error so that it is restarted like a failure
// instead of crashing the process.
func (s *Supervisor) runOnce(ctx context.Context, log *slog.Logger, c Component) (err error) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("component panicked", "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return c.Run(ctx)
}
