package main

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// TestWaitQuietWaitsOutABusyMachine keeps every core busy and checks that waitQuiet does not
// call the machine quiet meanwhile, and that it stops waiting when its context ends.
func TestWaitQuietWaitsOutABusyMachine(t *testing.T) {
	var stop atomic.Bool
	done := make(chan struct{})
	for range runtime.NumCPU() {
		go func() {
			defer func() { done <- struct{}{} }()
			for !stop.Load() { //nolint:revive // spinning on purpose: the test needs busy cores
			}
		}()
	}
	defer func() {
		stop.Store(true)
		for range runtime.NumCPU() {
			<-done
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 4*quietWindow)
	defer cancel()
	waited, ok := waitQuiet(ctx)
	if ok {
		t.Fatalf("waitQuiet called the machine quiet after %s while every core was busy", waited)
	}
	if waited > 4*quietWindow+time.Second {
		t.Fatalf("waitQuiet waited %s, past its context's end", waited)
	}
}

// TestCoresBusyWaitsOutItsWindow measures the machine's load over a window from a start that
// has only just passed: it must wait the window out, and so never read more cores busy than
// the machine has (one 10 ms tick over a millisecond read as 21.92 cores on two).
func TestCoresBusyWaitsOutItsWindow(t *testing.T) {
	const window = 300 * time.Millisecond
	start := time.Now()
	busy := coresBusy(t.Context(), startCPU(0), start, window)
	if took := time.Since(start); took < window {
		t.Fatalf("coresBusy returned after %s, before its window of %s", took, window)
	}
	// One tick either side of the window, and a little for other work on the machine.
	if limit := float64(runtime.NumCPU()) + 0.1; busy < 0 || busy > limit {
		t.Fatalf("coresBusy = %.2f cores on a machine of %d", busy, runtime.NumCPU())
	}
}

// TestLogTailIsTheLastLines: a failed seeding quotes the server's last log lines, which say
// why it answered 5xx.
func TestLogTailIsTheLastLines(t *testing.T) {
	var b lockedBuffer
	for i := range 30 {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	if got, want := b.tail(3), "line 27\nline 28\nline 29"; got != want {
		t.Fatalf("tail(3) = %q, want %q", got, want)
	}
	var short lockedBuffer
	fmt.Fprint(&short, "only\n")
	if got := short.tail(20); got != "only" {
		t.Fatalf("tail of one line = %q", got)
	}
}
