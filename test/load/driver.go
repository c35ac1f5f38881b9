package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// bounds stop a scenario by itself: after maxRequests requests or once duration has passed,
// whichever comes first. Requests in flight at the deadline are allowed to finish (each is
// bounded by the client's timeout).
type bounds struct {
	clients     int
	maxRequests int64
	duration    time.Duration
	// firstSeq is the seq of the first operation, so that a scenario run in several slices
	// numbers its operations without repeating one.
	firstSeq int64
}

// result is what one scenario or ceiling measured.
type result struct {
	Name     string
	Clients  int
	Requests int64 // completed operations, failed ones included
	Errors   int64 // non-2xx answers and transport errors
	Elapsed  time.Duration
	P50      time.Duration
	P99      time.Duration
	Max      time.Duration
	// PeakRSS is the measured process's peak resident memory, in bytes; 0 when no separate
	// process was measured.
	PeakRSS int64
	// FirstError describes one failure, for the report.
	FirstError string
	// Unexpected counts successful answers that were not the kind the scenario asks for
	// (an X-Cache other than the one expected).
	Unexpected int64
	// Unit names what Requests counts ("req", "verif", "tx", "query").
	Unit string
	// CPU time used during the run by the measured process (0 when none), by this runner
	// (the clients, and the in-process ceilings), and by the whole machine.
	ProcCPU, SelfCPU, MachineCPU time.Duration
	// PrincipalHits and PrincipalMisses are the authenticated requests whose principal the
	// measured server(s) served from memory or read from the database, from their /metrics;
	// PrincipalsKnown says whether they could be read.
	PrincipalHits, PrincipalMisses int64
	PrincipalsKnown                bool
	// RedisFailures are the Redis calls of the measured server(s) that failed or passed
	// their timeout during the run (each one has them read principals from the database for
	// a while), from their /metrics.
	RedisFailures int64
	// lat holds every operation's latency, sorted, for merging slices.
	lat []time.Duration
}

// merge combines the slices of one scenario (or ceiling) into one result: counts, times and
// CPU add up, latencies are pooled, the peak RSS is the highest.
func merge(parts ...result) result {
	if len(parts) == 0 {
		return result{}
	}
	m := parts[0]
	m.lat = append([]time.Duration(nil), m.lat...)
	for _, p := range parts[1:] {
		m.Requests += p.Requests
		m.Errors += p.Errors
		m.Unexpected += p.Unexpected
		m.Elapsed += p.Elapsed
		m.ProcCPU += p.ProcCPU
		m.SelfCPU += p.SelfCPU
		m.MachineCPU += p.MachineCPU
		m.PeakRSS = max(m.PeakRSS, p.PeakRSS)
		m.PrincipalHits += p.PrincipalHits
		m.PrincipalMisses += p.PrincipalMisses
		m.RedisFailures += p.RedisFailures
		m.PrincipalsKnown = m.PrincipalsKnown && p.PrincipalsKnown
		if m.FirstError == "" {
			m.FirstError = p.FirstError
		}
		m.lat = append(m.lat, p.lat...)
	}
	slices.Sort(m.lat)
	m.setPercentiles()
	return m
}

func (r *result) setPercentiles() {
	r.P50, r.P99, r.Max = 0, 0, 0
	if len(r.lat) > 0 {
		r.P50 = percentile(r.lat, 0.50)
		r.P99 = percentile(r.lat, 0.99)
		r.Max = r.lat[len(r.lat)-1]
	}
}

// perOp divides a CPU time by the operations done.
func (r result) perOp(d time.Duration) time.Duration {
	if r.Requests == 0 {
		return 0
	}
	return d / time.Duration(r.Requests)
}

// OtherCPU is the machine's CPU time not used by the measured process or the runner: the
// database server, mostly.
func (r result) OtherCPU() time.Duration {
	return max(r.MachineCPU-r.ProcCPU-r.SelfCPU, 0)
}

// Rate is the completed operations per second.
func (r result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// errExhausted, returned by an op, ends its worker without counting the call: the worker has
// nothing left to do (the delete scenario's worker has deleted every post it may).
var errExhausted = errors.New("worker has nothing left to do")

// op performs one operation for worker w; seq numbers operations across the scenario from 0.
// It returns an error for anything but the expected answer. unexpected marks an answer that
// is acceptable but not the kind measured (it is counted, not failed).
type op func(ctx context.Context, w *worker, seq int64) (unexpected bool, err error)

// worker is one concurrent client: its index, a reusable body buffer and its own latencies.
type worker struct {
	id        int
	buf       bytes.Buffer
	latencies []time.Duration
	// req, hdr and fields are the load client's buffers: the request being written, the
	// header lines of the last response, and the request's extra header fields.
	req, hdr []byte
	fields   []field
}

// drive runs op from b.clients goroutines until the bounds are reached and measures it.
// pid, when not 0, is the process whose peak RSS and CPU time are recorded.
func drive(ctx context.Context, name string, b bounds, pid int, fn op) result {
	if pid == 0 {
		return driveAll(ctx, name, b, nil, fn)
	}
	return driveAll(ctx, name, b, []int{pid}, fn)
}

// driveAll is drive measuring several processes (the servers of the instances scenarios):
// their CPU times add up, and the peak RSS is the highest of theirs.
func driveAll(ctx context.Context, name string, b bounds, pids []int, fn op) result {
	var (
		next       atomic.Int64
		errs       atomic.Int64
		unexpected atomic.Int64
		firstErr   sync.Once
		firstMsg   string
	)
	samplers := make([]*rssSampler, len(pids))
	for i, pid := range pids {
		samplers[i] = startRSS(pid)
	}
	workers := make([]*worker, b.clients)
	cpu := startCPUs(pids)
	start := time.Now()
	deadline := start.Add(b.duration)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{id: i, latencies: make([]time.Duration, 0, 1024)}
		workers[i] = w
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				n := next.Add(1) - 1
				if n >= b.maxRequests {
					return
				}
				seq := b.firstSeq + n
				t0 := time.Now()
				odd, err := fn(ctx, w, seq)
				if errors.Is(err, errExhausted) {
					return
				}
				w.latencies = append(w.latencies, time.Since(t0))
				if err != nil {
					errs.Add(1)
					firstErr.Do(func() { firstMsg = err.Error() })
				} else if odd {
					unexpected.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	procCPU, selfCPU, machineCPU := cpu.finish()
	var all []time.Duration
	for _, w := range workers {
		all = append(all, w.latencies...)
	}
	slices.Sort(all)
	r := result{
		Name: name, Clients: b.clients, Requests: int64(len(all)), Errors: errs.Load(),
		Unexpected: unexpected.Load(), Elapsed: elapsed, FirstError: firstMsg, Unit: "req",
		ProcCPU: procCPU, SelfCPU: selfCPU, MachineCPU: machineCPU, lat: all,
	}
	r.setPercentiles()
	for _, s := range samplers {
		r.PeakRSS = max(r.PeakRSS, s.finish())
	}
	return r
}

// percentile of sorted durations, nearest rank.
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// call is one HTTP exchange; the response body is read completely into w.buf, so the
// connection is reused.
func call(ctx context.Context, c *loadClient, w *worker, method, url, token string, body []byte) (reply, error) {
	return callType(ctx, c, w, method, url, token, "application/json", body)
}

// callType is call with a body of contentType.
func callType(ctx context.Context, c *loadClient, w *worker, method, url, token, contentType string, body []byte) (reply, error) {
	fields := w.fields[:0]
	if body != nil {
		fields = append(fields, field{"Content-Type", contentType})
	}
	if token != "" {
		fields = append(fields, field{"Authorization", "Bearer " + token})
	}
	w.fields = fields
	return c.do(ctx, w, method, url, fields, body)
}

// expect turns an unexpected status into an error that shows the start of the body.
func expect(resp reply, w *worker, want int) error {
	if resp.status == want {
		return nil
	}
	body := w.buf.Bytes()
	if len(body) > 300 {
		body = body[:300]
	}
	return fmt.Errorf("%s %s: status %d, want %d: %s", resp.method, resp.path, resp.status, want, body)
}
