package ecg

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/acme/postsvc/application/paging"
	"github.com/acme/postsvc/domain/ecg/ecg"
	"github.com/acme/postsvc/ports"
	ecgport "github.com/acme/postsvc/ports/ecg"
)

// Analyses is the list of analyses every ECG gets, in the order their measures appear in
// insights. The composition root registers them; nothing else names one.
type Analyses []ecgport.Analysis

// Validate checks the list: at least one analysis, names and measure names unique, versions
// positive. A list that fails would store results that cannot be told apart.
func (as Analyses) Validate() error {
	if len(as) == 0 {
		return errors.New("ecg: no analyses are registered")
	}
	names := map[string]bool{}
	measures := map[string]string{}
	for _, a := range as {
		switch {
		case a.Name() == "" || names[a.Name()]:
			return fmt.Errorf("ecg: analysis name %q is empty or registered twice", a.Name())
		case a.Version() < 1:
			return fmt.Errorf("ecg: analysis %q has version %d; versions start at 1", a.Name(), a.Version())
		}
		names[a.Name()] = true
		for _, m := range a.Measures() {
			if other, ok := measures[m]; ok {
				return fmt.Errorf("ecg: measure %q is named by both %q and %q", m, other, a.Name())
			}
			measures[m] = a.Name()
		}
	}
	return nil
}

// Versions names every analysis at its current version.
func (as Analyses) Versions() []ecgport.AnalysisVersion {
	out := make([]ecgport.AnalysisVersion, len(as))
	for i, a := range as {
		out[i] = ecgport.AnalysisVersion{Name: a.Name(), Version: a.Version()}
	}
	return out
}

// order returns the stored results of analyses that are still registered, in the list's
// order. Results of an analysis that was removed are left out; results of an older version
// are shown until a reanalysis replaces them.
func (as Analyses) order(stored []ecg.Result) []ecg.Result {
	out := make([]ecg.Result, 0, len(stored))
	for _, a := range as {
		for _, r := range stored {
			if r.Analysis == a.Name() {
				out = append(out, r)
			}
		}
	}
	return out
}

// blockBatchBytes is how much packed signal one read of a job takes from storage.
const blockBatchBytes = 4 << 20

// samplesPool holds the sample buffers of analyses: one lead at a time, up to 4 MB each.
var samplesPool = sync.Pool{New: func() any { return new([]int32) }}

// errDamaged is a stored signal that does not match what was uploaded: its blocks do not
// decode, or the samples disagree with the lead's count or hash. Retrying cannot fix it.
var errDamaged = errors.New("the stored signal is damaged")

// blockSource returns an ECG's blocks from a position on, in order, and none past the last.
type blockSource func(ctx context.Context, from ecgport.BlockPos) ([]ecg.Block, error)

// pagedBlocks reads the ECG's blocks from storage up to blockBatchBytes at a time.
func pagedBlocks(repo ecgport.Repository, key ecg.Key) blockSource {
	return func(ctx context.Context, from ecgport.BlockPos) ([]ecg.Block, error) {
		return repo.Blocks(ctx, key, from, blockBatchBytes)
	}
}

// readBlocks hands out blocks already read (BlocksOf), all at the first call.
func readBlocks(blocks []ecg.Block) blockSource {
	return func(_ context.Context, from ecgport.BlockPos) ([]ecg.Block, error) {
		if from != (ecgport.BlockPos{}) {
			return nil, nil
		}
		return blocks, nil
	}
}

// measure runs every analysis over every lead of e, taking the signal from source lead by
// lead, so at most one lead's samples are in memory. Each lead's samples are checked against
// the count and hash recorded at upload before any analysis sees them.
func (s *Service) measure(ctx context.Context, e *ecg.ECG, source blockSource) ([]ecg.Result, error) {
	results := make([]ecg.Result, len(s.analyses))
	for i, a := range s.analyses {
		results[i] = ecg.Result{Analysis: a.Name(), Version: a.Version(), Leads: make([][]ecg.Measure, len(e.Leads()))}
	}
	buf, _ := samplesPool.Get().(*[]int32) // the pool's New makes nothing else
	defer samplesPool.Put(buf)
	leads := e.Leads()
	lead := 0
	samples := (*buf)[:0]
	finish := func() error {
		if lead >= len(leads) || len(samples) != leads[lead].Signal.Samples || ecg.SignalHash(samples) != leads[lead].Signal.Hash {
			return fmt.Errorf("%w: lead %d", errDamaged, lead)
		}
		for i, a := range s.analyses {
			m, err := a.Analyse(samples)
			if err != nil {
				return fmt.Errorf("analysis %s of lead %d: %w", a.Name(), lead, err)
			}
			results[i].Leads[lead] = m
		}
		lead++
		samples = samples[:0]
		return nil
	}
	var from ecgport.BlockPos
	for {
		blocks, err := source(ctx, from)
		if err != nil {
			return nil, err
		}
		if len(blocks) == 0 {
			break
		}
		for _, b := range blocks {
			if b.Lead != lead {
				if err := finish(); err != nil {
					return nil, err
				}
				if b.Lead != lead {
					return nil, fmt.Errorf("%w: lead %d has no blocks", errDamaged, lead)
				}
			}
			if samples, err = ecg.AppendUnpacked(samples, b.Data); err != nil {
				return nil, fmt.Errorf("%w: lead %d block %d: %w", errDamaged, b.Lead, b.Seq, err)
			}
			if len(samples) > ecg.MaxSamples {
				return nil, fmt.Errorf("%w: lead %d holds more than %d samples", errDamaged, lead, ecg.MaxSamples)
			}
		}
		if lead == len(leads)-1 && len(samples) == leads[lead].Signal.Samples {
			break // the last lead is whole: no need to ask storage for what follows
		}
		from = ecgport.After(blocks[len(blocks)-1])
	}
	if err := finish(); err != nil {
		return nil, err
	}
	if lead != len(leads) {
		return nil, fmt.Errorf("%w: %d of %d leads stored", errDamaged, lead, len(leads))
	}
	*buf = samples[:0]
	return results, nil
}

// failureMessage is what a failed ECG's insights say: for people, and without internal
// detail (which goes to the log). Each names a way out that works: uploading the same content
// again under the same id is answered with this stored, failed ECG and changes nothing.
func failureMessage(err error) string {
	if errors.Is(err, errDamaged) {
		return "The stored signal of this ECG is damaged, so it could not be analysed; " +
			"upload it again under a new id, or delete this ECG first."
	}
	return "The analysis could not be completed after repeated attempts; upload the ECG again under a new id, or contact support."
}

// Analyse runs the AnalyseJob: it computes the insights of one ECG and stores them, as part
// of a batch with the analysis jobs that run meanwhile (analysisBatches). A job for an ECG
// deleted meanwhile, or already analysed by an earlier run that died before settling its job,
// has nothing to do. When the last attempt fails, or the signal is damaged, the ECG is marked
// failed with a reason for people.
func (s *Service) Analyse(ctx context.Context, job ports.Job) error {
	key := ecg.Key(job.Payload)
	if !paging.ValidID(string(key)) {
		return fmt.Errorf("%w: ecg: analysis job payload %q is not an ECG key", ports.ErrPermanentJob, job.Payload)
	}
	err := s.batches.do(ctx, key)
	if err == nil {
		return nil
	}
	if errors.Is(err, errDamaged) {
		// Blocks vanish under a reader when the ECG is deleted while it is measured (a large
		// one is read page by page): that is a deletion, with nothing left to do, not damage.
		if _, gerr := s.store.ECGs(s.uow.Pool()).ByKey(ctx, key); errors.Is(gerr, ecg.ErrNotFound) {
			return nil
		}
	}
	if errors.Is(err, errDamaged) || job.Attempt >= job.MaxAttempts {
		// The job fails for good (the worker logs err with it); the ECG says so to its owner.
		if ferr := s.store.ECGs(s.uow.Pool()).MarkFailed(ctx, key, failureMessage(err), s.clock.Now()); ferr != nil {
			return errors.Join(err, ferr)
		}
		if errors.Is(err, errDamaged) {
			return fmt.Errorf("%w: ecg %s: %w", ports.ErrPermanentJob, key, err)
		}
	}
	return err
}

// analyseBatch analyses the pending ECGs among keys and stores their results, and returns each
// key's error (none for an ECG that is gone or no longer pending: nothing to do). The reads
// and the write are one statement each for the whole batch: ByKeys, BlocksOf for the ECGs
// that fit blockBatchBytes together (a larger ECG is read page by page on its own), and
// SaveFirstResults, or SaveResults one by one should that fail.
func (s *Service) analyseBatch(ctx context.Context, keys []ecg.Key) map[ecg.Key]error {
	errs := make(map[ecg.Key]error, len(keys))
	fail := func(err error, keys ...ecg.Key) {
		for _, k := range keys {
			errs[k] = err
		}
	}
	repo := s.store.ECGs(s.uow.Pool())
	all, err := repo.ByKeys(ctx, keys)
	if err != nil {
		fail(err, keys...)
		return errs
	}
	results := map[ecg.Key][]ecg.Result{}
	measured := func(e *ecg.ECG, source blockSource) {
		r, err := s.measure(ctx, e, source)
		if err != nil {
			errs[e.Key()] = err
			return
		}
		results[e.Key()] = r
	}
	var group []*ecg.ECG
	groupBytes := 0
	readGroup := func() {
		if len(group) == 0 {
			return
		}
		gk := make([]ecg.Key, len(group))
		for i, e := range group {
			gk[i] = e.Key()
		}
		blocks, err := repo.BlocksOf(ctx, gk)
		if err != nil {
			fail(err, gk...)
		} else {
			for _, e := range group {
				measured(e, readBlocks(blocks[e.Key()]))
			}
		}
		group, groupBytes = group[:0], 0
	}
	for _, e := range all {
		if e.Status() != ecg.StatusPending {
			continue
		}
		n := maxPackedBytes(e)
		if n > blockBatchBytes {
			measured(e, pagedBlocks(repo, e.Key()))
			continue
		}
		if groupBytes+n > blockBatchBytes {
			readGroup()
		}
		group = append(group, e)
		groupBytes += n
	}
	readGroup()
	if len(results) == 0 {
		return errs
	}
	if _, err := repo.SaveFirstResults(ctx, results, s.clock.Now()); err == nil {
		return errs
	}
	// One by one, so that what fails is only the ECG it fails for (results storage cannot
	// keep, an ECG changed meanwhile).
	for k, r := range results {
		err := repo.SaveResults(ctx, k, r, s.clock.Now())
		if !errors.Is(err, ecg.ErrNotFound) {
			errs[k] = err
		}
	}
	return errs
}

// maxPackedBytes bounds the packed size of e's blocks from its lead headers: at most 4 bytes
// a sample and a block header per MaxBlockSamples.
func maxPackedBytes(e *ecg.ECG) int {
	n := 0
	for _, l := range e.Leads() {
		blocks := (l.Signal.Samples + ecg.MaxBlockSamples - 1) / ecg.MaxBlockSamples
		n += 4*l.Signal.Samples + blocks*(ecg.MaxBlockBytes-4*ecg.MaxBlockSamples)
	}
	return n
}

// AnalysisGivenUp is the AnalyseJob's give-up hook: the worker running its last attempt died
// (a recording that runs the process out of memory, say), so the analysis will not run again,
// and the ECG, if still pending, is marked failed so that its owner learns it.
func (s *Service) AnalysisGivenUp(ctx context.Context, job ports.Job) error {
	key := ecg.Key(job.Payload)
	if !paging.ValidID(string(key)) {
		return fmt.Errorf("%w: ecg: analysis job payload %q is not an ECG key", ports.ErrPermanentJob, job.Payload)
	}
	return s.store.ECGs(s.uow.Pool()).MarkFailed(ctx, key, failureMessage(errGivenUp), s.clock.Now())
}

// errGivenUp is why an analysis whose attempts all died is failed.
var errGivenUp = errors.New("ecg: the analysis did not finish in any of its attempts")

// analyse measures e and stores its results.
func (s *Service) analyse(ctx context.Context, e *ecg.ECG) error {
	repo := s.store.ECGs(s.uow.Pool())
	results, err := s.measure(ctx, e, pagedBlocks(repo, e.Key()))
	if err != nil {
		return err
	}
	err = repo.SaveResults(ctx, e.Key(), results, s.clock.Now())
	if errors.Is(err, ecg.ErrNotFound) {
		return nil // deleted while it was measured
	}
	return err
}

// reanalyseBatch is how many ECGs one ReanalyseJob brings up to date before it hands over to
// the next: small enough that the job finishes within its lease and a restart loses little.
const reanalyseBatch = 50

// StartReanalysis enqueues the first ReanalyseJob, which walks every stored ECG whose results
// are not those of the current analyses and computes them again. One batch runs at a time, on
// one worker, so uploads' analyses keep running beside it.
func (s *Service) StartReanalysis(ctx context.Context) (string, error) {
	return s.jobs.Enqueue(ctx, s.uow.Pool(), ports.NewJob{Kind: ReanalyseJob, MaxAttempts: analyseAttempts})
}

// Reanalyse runs the ReanalyseJob: the next batch of outdated ECGs after the payload's key,
// then the job for the batch after it. An ECG that cannot be analysed keeps its results and
// status; the walk goes on. Should the process die between enqueueing the next batch and
// settling this one, this batch runs again: its ECGs are up to date by then and are skipped.
func (s *Service) Reanalyse(ctx context.Context, job ports.Job) error {
	after := ecg.Key(job.Payload)
	if after != "" && !paging.ValidID(string(after)) {
		return fmt.Errorf("%w: ecg: reanalysis job payload %q is not an ECG key", ports.ErrPermanentJob, job.Payload)
	}
	keys, err := s.store.ECGs(s.uow.Pool()).Outdated(ctx, after, s.analyses.Versions(), reanalyseBatch)
	if err != nil {
		return err
	}
	for _, key := range keys {
		e, err := s.store.ECGs(s.uow.Pool()).ByKey(ctx, key)
		if errors.Is(err, ecg.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		// A damaged ECG keeps its results and status (its analysis job said why it failed);
		// the walk goes on past it.
		if err := s.analyse(ctx, e); err != nil && !errors.Is(err, errDamaged) {
			return err
		}
	}
	if len(keys) < reanalyseBatch {
		return nil
	}
	_, err = s.jobs.Enqueue(ctx, s.uow.Pool(), ports.NewJob{Kind: ReanalyseJob, Payload: []byte(keys[len(keys)-1]), MaxAttempts: analyseAttempts})
	return err
}
