package ecg

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/postsvc/domain/ecg/ecg"
)

// recordingRun is a batch run that records each batch, answers the keys listed in fail with
// an error, and holds its first batch until release is closed.
type recordingRun struct {
	mu      sync.Mutex
	batches [][]ecg.Key
	fail    map[ecg.Key]error
	release chan struct{}
	// started is closed when the first batch starts.
	started chan struct{}
	once    sync.Once
	// hold is how long each batch takes.
	hold    time.Duration
	running atomic.Int32
	most    atomic.Int32
}

func newRecordingRun(fail map[ecg.Key]error) *recordingRun {
	return &recordingRun{fail: fail, release: make(chan struct{}), started: make(chan struct{})}
}

func (r *recordingRun) run(_ context.Context, keys []ecg.Key) map[ecg.Key]error {
	n := r.running.Add(1)
	defer r.running.Add(-1)
	for m := r.most.Load(); n > m && !r.most.CompareAndSwap(m, n); m = r.most.Load() {
	}
	r.once.Do(func() {
		close(r.started)
		<-r.release
	})
	time.Sleep(r.hold)
	r.mu.Lock()
	r.batches = append(r.batches, slices.Clone(keys))
	r.mu.Unlock()
	out := map[ecg.Key]error{}
	for _, k := range keys {
		if err := r.fail[k]; err != nil {
			out[k] = err
		}
	}
	return out
}

// queued waits until n requests wait in b's queue.
func queued(t *testing.T, b *analysisBatches, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.mu.Lock()
		got := len(b.queue)
		b.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests queued, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestAnalysesQueuedMeanwhileRunAsOneBatch: while the worker runs a batch, the analyses that
// arrive wait, then run together, at most AnalysesPerBatch at a time, oldest first; each job
// gets its own key's outcome.
func TestAnalysesQueuedMeanwhileRunAsOneBatch(t *testing.T) {
	errBad := errors.New("bad signal")
	keys := make([]ecg.Key, 1+AnalysesPerBatch+3)
	for i := range keys {
		keys[i] = ecg.Key(fmt.Sprintf("k%02d", i))
	}
	r := newRecordingRun(map[ecg.Key]error{keys[5]: errBad})
	b := newAnalysisBatches(r.run)
	got := make([]error, len(keys))
	var wg sync.WaitGroup
	wg.Go(func() { got[0] = b.do(t.Context(), keys[0]) })
	<-r.started // the first is taken by the worker, which holds it
	for i := 1; i < len(keys); i++ {
		wg.Go(func() { got[i] = b.do(t.Context(), keys[i]) })
		queued(t, b, i) // one at a time, so the queue's order is known
	}
	close(r.release)
	wg.Wait()

	want := [][]ecg.Key{keys[:1], keys[1 : 1+AnalysesPerBatch], keys[1+AnalysesPerBatch:]}
	if fmt.Sprint(r.batches) != fmt.Sprint(want) {
		t.Fatalf("batches %v, want %v", r.batches, want)
	}
	for i, err := range got {
		if wantErr := r.fail[keys[i]]; !errors.Is(err, wantErr) || (wantErr == nil) != (err == nil) {
			t.Errorf("%s: error %v, want %v", keys[i], err, wantErr)
		}
	}
}

// TestAnalysisWorkersBoundTheBatchesRunning: with two workers, two batches run at once and
// never three.
func TestAnalysisWorkersBoundTheBatchesRunning(t *testing.T) {
	r := newRecordingRun(nil)
	close(r.release)
	s := &Service{}
	r.hold = 2 * time.Millisecond // long enough for the others to pile up
	s.batches = newAnalysisBatches(r.run)
	if slots := s.RunAnalysesOn(2); slots != 2*AnalysesPerBatch {
		t.Fatalf("RunAnalysesOn(2) = %d job slots, want %d", slots, 2*AnalysesPerBatch)
	}
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			if err := s.batches.do(t.Context(), ecg.Key(fmt.Sprint(i))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if most := r.most.Load(); most != 2 {
		t.Fatalf("at most %d batches ran at once, want 2", most)
	}
	seen := 0
	for _, batch := range r.batches {
		if len(batch) > AnalysesPerBatch {
			t.Fatalf("a batch of %d keys", len(batch))
		}
		seen += len(batch)
	}
	if seen != 200 {
		t.Fatalf("%d keys analysed, want 200", seen)
	}
}

// TestAnalysisWithdrawnWhenItsJobEnds: a job whose context ends while its key waits leaves the
// queue at once, and its key is never analysed.
func TestAnalysisWithdrawnWhenItsJobEnds(t *testing.T) {
	r := newRecordingRun(nil)
	b := newAnalysisBatches(r.run)
	var wg sync.WaitGroup
	wg.Go(func() { _ = b.do(t.Context(), "first") })
	<-r.started
	cause := errors.New("lease lost")
	ctx, cancel := context.WithCancelCause(t.Context())
	done := make(chan error, 1)
	go func() { done <- b.do(ctx, "withdrawn") }()
	queued(t, b, 1)
	cancel(cause)
	if err := <-done; !errors.Is(err, cause) {
		t.Fatalf("do returned %v, want the context's cause", err)
	}
	queued(t, b, 0)
	close(r.release)
	wg.Wait()
	if fmt.Sprint(r.batches) != "[[first]]" {
		t.Fatalf("batches %v: the withdrawn key ran", r.batches)
	}
}

// TestJobsInARunningBatchWaitWithoutSpinning: while one worker runs a batch, the jobs whose
// keys it holds wait for it. They may take the other, free worker once, find the queue empty
// and go back to waiting; before, they took and freed it again and again for as long as the
// batch ran, a busy loop that cost the server a sixth of its CPU under the load runner's
// paced ECG uploads.
func TestJobsInARunningBatchWaitWithoutSpinning(t *testing.T) {
	r := newRecordingRun(nil)
	s := &Service{}
	s.batches = newAnalysisBatches(r.run)
	s.RunAnalysesOn(2)
	b := s.batches
	// Both workers busy, so that the three keys queue before any batch takes them.
	b.workers <- struct{}{}
	b.workers <- struct{}{}
	var wg sync.WaitGroup
	for _, key := range []ecg.Key{"a", "b", "c"} {
		wg.Go(func() {
			if err := b.do(t.Context(), key); err != nil {
				t.Error(err)
			}
		})
	}
	queued(t, b, 3)
	<-b.workers // one worker free: a job takes it, and its batch takes all three keys
	<-r.started
	<-b.workers // the other worker free while that batch runs
	time.Sleep(50 * time.Millisecond)
	b.mu.Lock()
	idle := b.idle
	b.mu.Unlock()
	close(r.release)
	wg.Wait()
	if len(r.batches) != 1 || len(r.batches[0]) != 3 {
		t.Fatalf("batches %v, want one of the three keys", r.batches)
	}
	if idle > 2 {
		t.Fatalf("the waiting jobs found the queue empty %d times in 50 ms: they spin on the free worker", idle)
	}
}
