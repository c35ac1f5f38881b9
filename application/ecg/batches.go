package ecg

import (
	"context"
	"slices"
	"sync"

	"github.com/acme/postsvc/domain/ecg/ecg"
)

// AnalysesPerBatch is the most analysis jobs one analysis worker takes as one batch.
//
// An analysis costs the database far more than the analysis itself costs the CPU (reading
// the ECG, reading its blocks, a transaction that stores the results): one by one, the
// analyses of uploads arriving at the upload ceiling's pace cost as much as the uploads, and
// fell behind them. Taken together, the analyses claimed meanwhile share those statements.
// An idle service still analyses each upload at once, alone.
const AnalysesPerBatch = 16

// RunAnalysesOn sets how many analysis workers run in this process (APP_ECG_WORKERS): how
// many batches of analyses run at once. It returns how many analysis jobs the job pool should
// hold at once, so that jobs claimed while the workers are busy wait for the next batch
// instead of in the database. Call it before the job pool starts; without it one worker runs.
func (s *Service) RunAnalysesOn(workers int) int {
	workers = max(workers, 1)
	s.batches.workers = make(chan struct{}, workers)
	return workers * AnalysesPerBatch
}

// analysisBatches gathers the analysis jobs that run at once into batches. Each job's
// goroutine queues its key and waits; whichever of them finds a worker free runs batches of
// the oldest keys queued, up to AnalysesPerBatch, until its own key has been analysed, then
// frees the worker for a goroutine still waiting. So there is no goroutine of its own, and a
// batch runs under the context of a job in it.
type analysisBatches struct {
	// run analyses a batch and returns each key's error (absent: nil).
	run     func(ctx context.Context, keys []ecg.Key) map[ecg.Key]error
	workers chan struct{}

	mu    sync.Mutex
	queue []*analysisRequest
	// idle counts the times a worker found the queue empty, for the tests: a job whose key a
	// batch has taken waits for that batch and does not take a worker again.
	idle int
}

type analysisRequest struct {
	key  ecg.Key
	done chan error // buffered: its batch never waits for the job's goroutine
}

func newAnalysisBatches(run func(ctx context.Context, keys []ecg.Key) map[ecg.Key]error) *analysisBatches {
	return &analysisBatches{run: run, workers: make(chan struct{}, 1)}
}

// do analyses key in a batch and returns its error. When ctx ends before a batch takes the
// key, it returns ctx's cause; once taken, it waits for that batch.
func (b *analysisBatches) do(ctx context.Context, key ecg.Key) error {
	req := &analysisRequest{key: key, done: make(chan error, 1)}
	b.mu.Lock()
	b.queue = append(b.queue, req)
	b.mu.Unlock()
	select {
	case err := <-req.done:
		return err
	case b.workers <- struct{}{}:
		b.serve(ctx, req)
		<-b.workers
		// serve returns once a batch has taken req, its own or another worker's: all that is
		// left is to wait for that batch. (Taking a worker again instead spun, taking and
		// freeing it, for as long as the other worker's batch ran.)
		return <-req.done
	case <-ctx.Done():
		if b.withdraw(req) {
			return context.Cause(ctx)
		}
		return <-req.done
	}
}

// serve runs batches from the queue until one has taken req, or none is left (another worker
// has taken req and answers it).
func (b *analysisBatches) serve(ctx context.Context, req *analysisRequest) {
	for {
		batch := b.take()
		if len(batch) == 0 {
			return
		}
		keys := make([]ecg.Key, len(batch))
		for i, r := range batch {
			keys[i] = r.key
		}
		errs := b.run(ctx, keys)
		for _, r := range batch {
			r.done <- errs[r.key]
		}
		if slices.Contains(batch, req) {
			return
		}
	}
}

// take removes the oldest requests from the queue, up to AnalysesPerBatch.
func (b *analysisBatches) take() []*analysisRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := min(len(b.queue), AnalysesPerBatch)
	if n == 0 {
		b.idle++
	}
	batch := slices.Clone(b.queue[:n])
	b.queue = slices.Delete(b.queue, 0, n)
	return batch
}

// withdraw removes req from the queue; false when a batch has taken it already.
func (b *analysisBatches) withdraw(req *analysisRequest) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := slices.Index(b.queue, req)
	if i < 0 {
		return false
	}
	b.queue = slices.Delete(b.queue, i, i+1)
	return true
}
