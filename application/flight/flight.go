// Package flight lets concurrent callers of the same work share one run of it: the post-list
// cache's page loads and the media thumbnails. It is the kernel's one way to do so.
//
// Unlike golang.org/x/sync/singleflight's DoChan, the run happens on the goroutine of the
// caller that started it, not on a fresh one: a cache miss costs no goroutine start, no stack
// growth from a small stack and no hand-over between two goroutines, which the list-miss
// profile showed (about a twentieth of the server's CPU per miss). Callers that join a run
// still stop waiting as soon as their own context ends.
package flight

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrStoppedWaiting wraps the context error of a caller whose context ended while it waited
// for a run another caller started. The run goes on for the others.
var ErrStoppedWaiting = errors.New("flight: stopped waiting for the shared work")

// noDeadlineTimeout bounds a run whose starting caller had no deadline: the others waiting on
// it must not wait for ever.
const noDeadlineTimeout = time.Minute

// Group shares runs by key. The zero value is ready to use.
type Group[K comparable, V any] struct {
	mu     sync.Mutex
	flying map[K]*call[V]
}

type call[V any] struct {
	done chan struct{}
	val  V     // set before done is closed
	err  error // set before done is closed
}

// Do runs fn once for every caller of key that arrives while a run is under way, and returns
// its result; shared says the result came from a run another caller started.
//
// The run is shared, so the first caller's client going away must not fail the callers that
// joined it: fn gets ctx's values and deadline (or a minute without one) but not its
// cancellation, and the first caller waits for fn even when its own context ends. A caller
// that joined returns as soon as its own context ends, with an error wrapping
// ErrStoppedWaiting and the context's error.
//
// A joined run that failed only because the first caller's time ran out says nothing about
// this caller's chances: it tries once more, leading a run of its own if none is under way,
// as long as its own context is alive. One retry bounds the extra work.
//
// A panic in fn fails the run for the callers that joined it and goes on up the first
// caller's goroutine, where the recovery middleware answers it.
func (g *Group[K, V]) Do(ctx context.Context, key K, fn func(context.Context) (V, error)) (v V, shared bool, err error) {
	for attempt := 0; ; attempt++ {
		c, first := g.join(key)
		if first {
			g.run(ctx, key, c, fn)
			return c.val, false, c.err
		}
		select {
		case <-c.done:
			if attempt == 0 && c.err != nil && ctx.Err() == nil && isContextError(c.err) {
				continue
			}
			return c.val, true, c.err
		case <-ctx.Done():
			var zero V
			return zero, true, fmt.Errorf("%w: %w", ErrStoppedWaiting, ctx.Err())
		}
	}
}

// join returns the run under way for key, or starts one (first) that the caller must run.
func (g *Group[K, V]) join(key K) (*call[V], bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c, ok := g.flying[key]; ok {
		return c, false
	}
	if g.flying == nil {
		g.flying = map[K]*call[V]{}
	}
	c := &call[V]{done: make(chan struct{})}
	g.flying[key] = c
	return c, true
}

// run runs fn for the callers of c and ends c whatever happens, a panic included.
func (g *Group[K, V]) run(ctx context.Context, key K, c *call[V], fn func(context.Context) (V, error)) {
	finished := false
	defer func() {
		if !finished {
			// fn panicked: the callers that joined get an error, and the panic goes on
			// with its own value (http.ErrAbortHandler, say, must stay itself).
			r := recover()
			c.err = fmt.Errorf("flight: the shared work panicked: %v", r)
			g.end(key, c)
			panic(r)
		}
		g.end(key, c)
	}()
	wctx, cancel := Detached(ctx)
	defer cancel()
	c.val, c.err = fn(wctx)
	finished = true
}

// end removes c from the group, so the next caller of key starts a new run, and releases the
// callers waiting on it.
func (g *Group[K, V]) end(key K, c *call[V]) {
	g.mu.Lock()
	delete(g.flying, key)
	g.mu.Unlock()
	close(c.done)
}

// Detached is ctx without its cancellation but with its deadline (or a minute without one):
// the context of work shared by several callers.
func Detached(ctx context.Context) (context.Context, context.CancelFunc) {
	if deadline, ok := ctx.Deadline(); ok {
		return context.WithDeadline(context.WithoutCancel(ctx), deadline)
	}
	return context.WithTimeout(context.WithoutCancel(ctx), noDeadlineTimeout)
}

func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
