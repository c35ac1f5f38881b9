package main

import (
	"context"
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
