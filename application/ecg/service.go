// Package ecg is the ECG use case: a user uploads electrocardiograms, lists, reads and deletes
// them, and reads the insights that background jobs compute from them.
//
// An upload is stored together with its analysis job in one unit of work, so an ECG that was
// answered 202 always has a job that will analyse it, here or on another instance, even if the
// process dies right after the commit; and a job only ever sees a committed, whole ECG.
package ecg

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/acme/postsvc/application/paging"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/ecg/ecg"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
	ecgport "github.com/acme/postsvc/ports/ecg"
)

// The context's background jobs.
const (
	// AnalyseJob computes the insights of one new ECG; its payload is the ECG's key.
	AnalyseJob = "ecg.analyse"
	// ReanalyseJob brings the results of stored ECGs up to the current analyses, a batch at
	// a time; its payload is the key after which the batch starts ("" for the first).
	ReanalyseJob = "ecg.reanalyse"
)

// analyseAttempts is how many times an analysis job runs before its ECG is marked failed.
// With the worker's backoff (1 s doubling, at most 10 min) the retries span about half an
// hour, enough to ride out a database failover.
const analyseAttempts = 12

// Settings are the use case's limits.
type Settings struct {
	// QuotaBytes is the most that one user's ECGs may take together, counted as the packed
	// bytes of their samples (what the database stores of them): an upload that would take
	// the owner past it is refused with ecg.ErrQuotaExceeded.
	QuotaBytes int64
}

// Service implements ecgport.Service and the context's job handlers.
type Service struct {
	s        Settings
	uow      ports.UnitOfWork
	store    ecgport.Store
	spools   ecgport.Spools
	jobs     ports.JobQueue
	analyses Analyses
	clock    ports.Clock
	ids      ports.IDGenerator
	batches  *analysisBatches
	// sending counts, per owner, the large ECGs being sent from a spool (see Signals).
	sendingMu sync.Mutex
	sending   map[identity.UserID]int
	// storing holds, per owner with an upload being stored, the turn to store (storeTurn).
	storingMu sync.Mutex
	storing   map[identity.UserID]*storeTurns
}

var (
	_ ecgport.Service     = (*Service)(nil)
	_ ports.UserDataOwner = (*Service)(nil)
)

// NewService builds the ECG use case.
func NewService(uow ports.UnitOfWork, store ecgport.Store, spools ecgport.Spools, jobs ports.JobQueue,
	analyses Analyses, clock ports.Clock, ids ports.IDGenerator, settings Settings,
) *Service {
	s := &Service{s: settings, uow: uow, store: store, spools: spools, jobs: jobs, analyses: analyses, clock: clock, ids: ids,
		sending: map[identity.UserID]int{}, storing: map[identity.UserID]*storeTurns{}}
	s.batches = newAnalysisBatches(s.analyseBatch)
	return s
}

// contentOwner refuses admins: they manage accounts and hold no content.
func contentOwner(p identity.Principal) error { return identity.RequireContentOwner(p) }

// Receive checks the caller before any of an upload is read and hands out its spool. An owner
// already at or over the quota gets a spool that keeps nothing (atQuota): none of the upload
// is spooled or stored, and it is refused as soon as its id is read, or once decoded when it
// has none, unless it retries an ECG already stored, which only the id tells, and which must
// be answered as before (200, or 409).
func (s *Service) Receive(ctx context.Context, p identity.Principal) (ecgport.Spool, error) {
	if err := contentOwner(p); err != nil {
		return nil, err
	}
	// One plain read of the committed sum, without waiting for an upload of the owner that
	// holds the lock while it commits (Repository.LockOwner on the pool).
	used, err := s.store.ECGs(s.uow.Pool()).LockOwner(ctx, p.UserID)
	if err != nil {
		return nil, identity.AsCaller(err)
	}
	if used >= s.s.QuotaBytes {
		return &atQuota{ctx: ctx, s: s, owner: p.UserID}, nil
	}
	return s.spools.New()
}

// atQuota is the spool of an upload whose owner is at the quota when it begins: it keeps no
// block, only counts their bytes, and holds no share of the spools' memory or disk. Told the
// upload's id (ecgport.IDWatcher), it refuses at once an id that is not stored: the rest of
// the body is then not read.
type atQuota struct {
	ctx   context.Context // the upload's, for WatchID's look-up
	s     *Service
	owner identity.UserID
	bytes int64
}

var _ ecgport.IDWatcher = (*atQuota)(nil)

// WatchID refuses the upload with ecg.ErrQuotaExceeded unless the owner has an ECG under id:
// a retry, which Upload answers once the body is decoded (200 or 409). An id that cannot be
// one, or a look-up that fails, is left to Upload too.
func (a *atQuota) WatchID(id string) error {
	if !ecg.PlausibleID(id) {
		return nil
	}
	_, err := a.s.store.ECGs(a.s.uow.Pool()).Get(a.ctx, a.owner, ecg.ID(id))
	if errors.Is(err, ecg.ErrNotFound) {
		return ecg.ErrQuotaExceeded
	}
	return nil
}

func (a *atQuota) Put(b ecg.Block) error { a.bytes += int64(len(b.Data)); return nil }
func (a *atQuota) Bytes() int64          { return a.bytes }
func (a *atQuota) Close() error          { return nil }
func (a *atQuota) Each(func(ecg.Block) error) error {
	return errors.New("ecg: the blocks of an upload over the quota were not kept")
}

// uploadAtQuota answers an upload whose owner was at the quota when it began: the stored ECG
// when it retries one with the same content (nothing new is stored), ecg.ErrExists when the id
// holds other content, else ecg.ErrQuotaExceeded.
func (s *Service) uploadAtQuota(ctx context.Context, e *ecg.ECG) (*ecg.ECG, bool, error) {
	stored, err := s.storedUnderID(ctx, e)
	if errors.Is(err, ecg.ErrNotFound) {
		return nil, false, ecg.ErrQuotaExceeded
	}
	return stored, false, err
}

// storedUnderID answers an upload of e whose id the owner already uses: the stored ECG when
// its content is the same (a retry, nothing to store), ecg.ErrExists when it differs, and
// ecg.ErrNotFound when no ECG is stored under the id (any more).
func (s *Service) storedUnderID(ctx context.Context, e *ecg.ECG) (*ecg.ECG, error) {
	stored, err := s.store.ECGs(s.uow.Pool()).Get(ctx, e.Owner(), e.ID())
	switch {
	case err != nil:
		return nil, err
	case stored.SameContent(e):
		return stored, nil
	default:
		return nil, ecg.ErrExists
	}
}

// Upload validates and stores an ECG with its analysis job.
func (s *Service) Upload(ctx context.Context, p identity.Principal, d ecg.Draft, signals ecgport.Spool) (*ecg.ECG, bool, error) {
	if err := contentOwner(p); err != nil {
		return nil, false, err
	}
	e, err := ecg.New(ecg.Key(s.ids.NewID()), p.UserID, d, s.clock.Now())
	if err != nil {
		return nil, false, err
	}
	if _, ok := signals.(*atQuota); ok {
		return s.uploadAtQuota(ctx, e)
	}
	size := signals.Bytes()
	done, err := s.storeTurn(ctx, p.UserID)
	if err != nil {
		return nil, false, err
	}
	defer done()
	// A retry can meet the first attempt's ECG being deleted in between; a few rounds settle
	// it either way.
	for range 3 {
		err = s.uow.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
			repo := s.store.ECGs(tx)
			// The quota is checked under the owner's row lock, the transaction's first read,
			// so concurrent uploads of one owner commit one at a time, each seeing the bytes
			// of those before it: together they can never pass the quota. (The lock also
			// keeps attempts that lost a deadlock from losing again: uploads of one id that
			// wait while a delete of that id commits all hold a shared lock on the deleted
			// row's key and each waits for the others to insert, and three attempts were
			// not always enough when a delete raced retried uploads.) Uploads of different
			// owners never wait for each other.
			used, err := repo.LockOwner(ctx, p.UserID)
			if err != nil {
				return err
			}
			if used+size > s.s.QuotaBytes {
				// A retry of an ECG already stored stores nothing new: it is answered as a
				// duplicate (below), not refused.
				switch _, err := repo.Get(ctx, p.UserID, e.ID()); {
				case err == nil:
					return fmt.Errorf("ecg: %q over the quota: %w", e.ID(), ecgport.ErrDuplicate)
				case !errors.Is(err, ecg.ErrNotFound):
					return err
				}
				return ecg.ErrQuotaExceeded
			}
			if err := repo.Add(ctx, e, signals); err != nil {
				return err
			}
			_, err = s.jobs.Enqueue(ctx, tx, ports.NewJob{Kind: AnalyseJob, Payload: []byte(e.Key()), MaxAttempts: analyseAttempts})
			return err
		})
		if !errors.Is(err, ecgport.ErrDuplicate) {
			break
		}
		stored, err := s.storedUnderID(ctx, e)
		if errors.Is(err, ecg.ErrNotFound) {
			continue
		}
		return stored, false, err
	}
	switch {
	case errors.Is(err, ecgport.ErrDuplicate):
		// Every round met an ECG under this id that was gone when read: another upload and
		// delete of the same id keep racing this one. Report the conflict; a retry settles it.
		return nil, false, ecg.ErrExists
	case err != nil:
		return nil, false, identity.AsCaller(err)
	}
	return e, true, nil
}

// List returns a page of the caller's ECGs, newest upload first.
func (s *Service) List(ctx context.Context, p identity.Principal, req ports.PageRequest) (ecgport.Page, error) {
	if err := contentOwner(p); err != nil {
		return ecgport.Page{}, err
	}
	var v domain.Validator
	limit, err := paging.Limit(req.Limit)
	v.Check(err)
	before, err := paging.Decode(req.Cursor)
	v.Check(err)
	if err := v.Err(); err != nil {
		return ecgport.Page{}, err
	}
	list, err := s.store.ECGs(s.uow.Pool()).List(ctx, ecgport.ListQuery{Owner: p.UserID, Before: ecg.Key(before), Limit: limit})
	if err != nil {
		return ecgport.Page{}, err
	}
	page := ecgport.Page{ECGs: list.ECGs}
	if list.More && len(list.ECGs) > 0 {
		page.NextCursor = paging.Encode(string(list.ECGs[len(list.ECGs)-1].Key()))
	}
	return page, nil
}

// Get returns one of the caller's ECGs.
func (s *Service) Get(ctx context.Context, p identity.Principal, id string) (*ecg.ECG, error) {
	if err := contentOwner(p); err != nil {
		return nil, err
	}
	if !ecg.PlausibleID(id) {
		return nil, ecg.ErrNotFound
	}
	return s.store.ECGs(s.uow.Pool()).Get(ctx, p.UserID, ecg.ID(id))
}

// signalBatchBytes is how much packed signal one read of Signals takes from storage (about one
// full block): a short query each, so that no read holds a pool connection for long. A
// typical ECG (12 leads of 5,000 samples pack to about 100 KB) is one read.
var signalBatchBytes = 256 << 10

// Signals reads the packed samples of one of the caller's ECGs, which Get returned, whole
// before the caller writes any of them out. A typical ECG is one read, kept in memory; a
// larger one is read on batch by batch into a read-back spool (Spools.NewRead: memory, then a
// temporary file, within the half of the budgets that reads may hold). Every lead's samples
// are counted against the ECG's: an ECG deleted while it is read, which loses its blocks, is
// ecg.ErrNotFound, never a part of its signals. Past the reads' share of the spools' disk
// budget the read is domain.ErrOverloaded. The caller closes the result.
func (s *Service) Signals(ctx context.Context, p identity.Principal, e *ecg.ECG) (ecgport.Signals, error) {
	if err := contentOwner(p); err != nil {
		return nil, err
	}
	if e.Owner() != p.UserID {
		return nil, ecg.ErrNotFound
	}
	repo := s.store.ECGs(s.uow.Pool())
	count := newSampleCount(e)
	blocks, err := repo.Blocks(ctx, e.Key(), ecgport.BlockPos{}, signalBatchBytes)
	if err != nil {
		return nil, err
	}
	count.add(blocks)
	if count.whole() {
		return heldBlocks(blocks), nil
	}
	if len(blocks) == 0 {
		return nil, ecg.ErrNotFound
	}
	release, err := s.startSending(p.UserID)
	if err != nil {
		return nil, err
	}
	spool, err := s.spools.NewRead()
	if err != nil {
		release()
		return nil, err
	}
	spool = &sendingSpool{Spool: spool, release: release}
	for len(blocks) > 0 {
		for _, b := range blocks {
			if err := spool.Put(b); err != nil {
				_ = spool.Close()
				return nil, err
			}
		}
		from := ecgport.After(blocks[len(blocks)-1])
		if blocks, err = repo.Blocks(ctx, e.Key(), from, signalBatchBytes); err != nil {
			_ = spool.Close()
			return nil, err
		}
		count.add(blocks)
	}
	if !count.whole() {
		_ = spool.Close()
		return nil, ecg.ErrNotFound
	}
	return spool, nil
}

// storeTurns is the turn of one owner's uploads to be stored: a slot, and how many uploads
// hold it or wait for it.
type storeTurns struct {
	slot  chan struct{}
	users int
}

// storeTurn waits until no other upload of owner is being stored by this process, and
// returns the function that ends this one's turn. Uploads of one owner are stored one at a
// time anyway (the quota is checked under the owner's row lock, see Upload); waiting here
// instead of on that lock keeps the wait out of the database, where a lock wait longer than
// the driver's read timeout (10 s) was cut as a broken connection, and lets a wait that
// outlasts the upload's deadline be told for what it is: the account's own uploads queued
// ahead (503 overloaded, retry), not the database unreachable (503 unavailable), which an
// outside probe's 25 uploads of 52 MiB at once by one account got for a third of them.
// Uploads of other owners, and of this owner on other instances, do not wait here.
func (s *Service) storeTurn(ctx context.Context, owner identity.UserID) (done func(), err error) {
	s.storingMu.Lock()
	t := s.storing[owner]
	if t == nil {
		t = &storeTurns{slot: make(chan struct{}, 1)}
		s.storing[owner] = t
	}
	t.users++
	s.storingMu.Unlock()
	leave := func() {
		s.storingMu.Lock()
		defer s.storingMu.Unlock()
		if t.users--; t.users == 0 {
			delete(s.storing, owner)
		}
	}
	select {
	case t.slot <- struct{}{}:
		var once sync.Once
		return func() {
			once.Do(func() {
				<-t.slot
				leave()
			})
		}, nil
	case <-ctx.Done():
		leave()
		// The context's error is named, not wrapped: a deadline in the chain would read as
		// the database's.
		return nil, fmt.Errorf("%w: this account's other ECG uploads were being stored until this one's time to be stored ran out (%s); retry it",
			domain.ErrOverloaded, ctx.Err().Error())
	}
}

// MaxSpooledReads is how many large ECGs (those Signals spools) one owner may be sent at once.
// A spool is held until its answer is sent, for up to the write timeout to a slow client, and
// the spools' disk budget is shared with uploads: without a bound one account reading slowly
// could take it all, and every upload would be refused meanwhile.
const MaxSpooledReads = 8

// startSending counts one more large ECG being sent to owner, or refuses it with
// domain.ErrOverloaded when MaxSpooledReads are already; release undoes it.
func (s *Service) startSending(owner identity.UserID) (release func(), err error) {
	s.sendingMu.Lock()
	defer s.sendingMu.Unlock()
	if s.sending[owner] >= MaxSpooledReads {
		return nil, fmt.Errorf("%w: %d large ECGs are being sent to this account already; retry once one has arrived",
			domain.ErrOverloaded, MaxSpooledReads)
	}
	s.sending[owner]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.sendingMu.Lock()
			defer s.sendingMu.Unlock()
			if s.sending[owner]--; s.sending[owner] == 0 {
				delete(s.sending, owner)
			}
		})
	}, nil
}

// sendingSpool is the spool of a large ECG being sent: closing it ends the sending too.
type sendingSpool struct {
	ecgport.Spool
	release func()
}

func (s *sendingSpool) Close() error {
	defer s.release()
	return s.Spool.Close()
}

// sampleCount tallies the samples read of each lead of an ECG against what it holds.
type sampleCount struct {
	want, got []int
	// broken is set by a block of no lead of the ECG.
	broken bool
}

func newSampleCount(e *ecg.ECG) *sampleCount {
	c := &sampleCount{want: make([]int, len(e.Leads())), got: make([]int, len(e.Leads()))}
	for i, l := range e.Leads() {
		c.want[i] = l.Signal.Samples
	}
	return c
}

func (c *sampleCount) add(blocks []ecg.Block) {
	for _, b := range blocks {
		if b.Lead < 0 || b.Lead >= len(c.got) {
			c.broken = true
			continue
		}
		c.got[b.Lead] += b.Samples
	}
}

// whole reports whether every lead's samples were read, no more and no fewer.
func (c *sampleCount) whole() bool { return !c.broken && slices.Equal(c.want, c.got) }

// heldBlocks are signals read in one go, held in memory.
type heldBlocks []ecg.Block

func (h heldBlocks) Each(fn func(ecg.Block) error) error {
	for _, b := range h {
		if err := fn(b); err != nil {
			return err
		}
	}
	return nil
}

func (heldBlocks) Close() error { return nil }

// Insights returns the analysis state of one of the caller's ECGs and, once it is done, the
// measures of every analysis, in the order the analyses are registered.
func (s *Service) Insights(ctx context.Context, p identity.Principal, id string) (ecg.Insights, error) {
	e, err := s.Get(ctx, p, id)
	if err != nil {
		return ecg.Insights{}, err
	}
	var results []ecg.Result
	if e.Status() == ecg.StatusDone {
		repo := s.store.ECGs(s.uow.Pool())
		stored, err := repo.Results(ctx, e.Key())
		if err != nil {
			return ecg.Insights{}, err
		}
		if len(stored) == 0 {
			// A done ECG has results: they are stored with its status, and replaced in one
			// transaction. None means the ECG was deleted between the two reads, and its
			// insights are those of a missing ECG, not "done" with leads that measure nothing.
			if _, err := repo.ByKey(ctx, e.Key()); err != nil {
				return ecg.Insights{}, err
			}
		}
		results = s.analyses.order(stored)
	}
	return ecg.Compose(e, results), nil
}

// Delete removes one of the caller's ECGs with its signals and insights.
func (s *Service) Delete(ctx context.Context, p identity.Principal, id string) error {
	if err := contentOwner(p); err != nil {
		return err
	}
	if !ecg.PlausibleID(id) {
		return ecg.ErrNotFound
	}
	return s.uow.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		return s.store.ECGs(tx).Delete(ctx, p.UserID, ecg.ID(id))
	})
}

// DeleteUserData deletes a deleted user's ECGs in the deleting transaction
// (ports.UserDataOwner). Their signals and results, which can be gigabytes, are purged
// afterwards by CleanUpUser, in batches outside that transaction; nothing can reach them in
// between, since every read starts from an ECG row.
func (s *Service) DeleteUserData(ctx context.Context, tx ports.Scope, user identity.UserID) error {
	return s.store.ECGs(tx).DeleteByOwner(ctx, user)
}

// purgeBatch is how many rows of a deleted user's signals one statement deletes.
const purgeBatch = 500

// CleanUpUser purges a deleted user's signals and results, batch by batch, until none are
// left. It runs in the user-cleanup job, after the deletion committed, and may run again.
func (s *Service) CleanUpUser(ctx context.Context, user identity.UserID) error {
	repo := s.store.ECGs(s.uow.Pool())
	for {
		n, err := repo.PurgeOwner(ctx, user, purgeBatch)
		if err != nil {
			return fmt.Errorf("ecg: purge the signals of deleted user %s: %w", user, err)
		}
		if n == 0 {
			return nil
		}
	}
}
