// Package ecg declares the ECG context's ports: its repository, the spool that holds an
// upload's signals while it is received, the analyses, and the service it offers to the HTTP
// module and to the job workers.
package ecg

import (
	"context"
	"errors"
	"time"

	"github.com/acme/postsvc/domain/ecg/ecg"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
)

// Store builds the ECG repository on a storage scope: the transaction of a unit of work, or
// the pool (ports.UnitOfWork.Pool).
type Store interface {
	ECGs(tx ports.Scope) Repository
}

// Repository stores ECGs, their signal blocks and their analysis results. Reads and deletes
// that a user asks for are scoped to the owner, so one user can never reach another's ECG
// through them; the methods keyed by ecg.Key alone serve the background jobs. Every method
// wraps domain.ErrUnavailable when the database cannot be reached.
type Repository interface {
	// Add stores e and its blocks, and counts their packed bytes towards the owner's (see
	// LockOwner) until e is deleted. When the owner already has an ECG with e's ID it stores
	// nothing and returns an error wrapping ErrDuplicate; identity.ErrUnknownUser when the
	// owner does not exist. It may call blocks.Each more than once (a unit of work retried
	// after a deadlock), so Each must be repeatable.
	Add(ctx context.Context, e *ecg.ECG, blocks ecg.Blocks) error
	// LockOwner locks the owner's row until the unit of work ends, so that the owner's writes
	// that take it run one at a time, and returns what the owner's ECGs take: the packed bytes
	// of their samples (ecg.Block.Data, summed), which the quota counts. It must be the unit
	// of work's first read, so that the sum sees every write committed before the lock was
	// granted. identity.ErrUnknownUser when the owner does not exist. Where writers already
	// take turns (SQLite) it locks nothing more; on the pool's scope it locks nothing and
	// reads the sum as committed, without waiting for a holder of the lock.
	LockOwner(ctx context.Context, owner identity.UserID) (used int64, err error)
	// Get returns the owner's ECG with id; ecg.ErrNotFound when there is none.
	Get(ctx context.Context, owner identity.UserID, id ecg.ID) (*ecg.ECG, error)
	// ByKey returns the ECG stored under key; ecg.ErrNotFound when there is none.
	ByKey(ctx context.Context, key ecg.Key) (*ecg.ECG, error)
	// List returns one page of the owner's ECGs, newest upload (highest key) first.
	List(ctx context.Context, q ListQuery) (List, error)
	// Delete removes the owner's ECG with id, its blocks and its results; ecg.ErrNotFound
	// when there is none.
	Delete(ctx context.Context, owner identity.UserID, id ecg.ID) error
	// DeleteByOwner removes every ECG of owner, but not their blocks and results, which may
	// be many: PurgeOwner removes those afterwards, outside the deleting transaction. Until
	// then Blocks and Results by key still find them; nothing reaches those keys any more
	// but a job already running, whose writes then find no ECG.
	DeleteByOwner(ctx context.Context, owner identity.UserID) error
	// PurgeOwner removes up to limit stored rows of blocks and results of owner that no ECG
	// refers to any more, and returns how many it removed; 0 means none are left. How many
	// rows an ECG's blocks take is storage's business (a row may hold several blocks).
	PurgeOwner(ctx context.Context, owner identity.UserID, limit int) (int, error)
	// Blocks returns the ECG's blocks from position from on, in order (lead by lead, each in
	// sequence), as many as fit in maxBytes of packed data and at least one while any remain.
	// It returns none past the last block.
	Blocks(ctx context.Context, key ecg.Key, from BlockPos, maxBytes int) ([]ecg.Block, error)
	// SaveResults replaces the ECG's stored results with results and marks it done, analysed
	// at at; ecg.ErrNotFound when the ECG no longer exists.
	SaveResults(ctx context.Context, key ecg.Key, results []ecg.Result, at time.Time) error

	// The batch reads and write of the analysis jobs: a worker analyses the ECGs of the jobs
	// claimed meanwhile together, so their reads and their write cost one statement each,
	// not one per ECG.

	// ByKeys returns the ECGs stored under keys, in key order; keys with none are left out.
	ByKeys(ctx context.Context, keys []ecg.Key) ([]*ecg.ECG, error)
	// BlocksOf returns every block of the ECGs under keys, each ECG's in order (lead by lead,
	// each in sequence), in one read: the caller bounds the ECGs' total size. Keys with no
	// blocks are left out of the map.
	BlocksOf(ctx context.Context, keys []ecg.Key) (map[ecg.Key][]ecg.Block, error)
	// SaveFirstResults stores the results of every ECG of batch that is still pending and
	// marks those done, analysed at at, all or none: ECGs that are gone or no longer pending
	// are left as they are, and their keys are left out of what it returns, the keys it saved,
	// in key order. A pending ECG has no results yet: that is what lets one multi-row insert
	// store them all.
	SaveFirstResults(ctx context.Context, batch map[ecg.Key][]ecg.Result, at time.Time) ([]ecg.Key, error)
	// MarkFailed marks a pending ECG failed with reason, at at. An ECG that is no longer
	// pending (done by a run that finished first) is left as it is, and an unknown key is no
	// error: either way there is nothing left to mark.
	MarkFailed(ctx context.Context, key ecg.Key, reason string, at time.Time) error
	// Results returns the ECG's stored results, ordered by analysis name (the use case
	// orders them as the analyses are registered).
	Results(ctx context.Context, key ecg.Key) ([]ecg.Result, error)
	// Outdated returns up to limit keys above after, in key order, of ECGs that are done or
	// failed and whose stored results are not exactly current (an analysis name and version
	// each), so that a reanalysis can walk every ECG once.
	Outdated(ctx context.Context, after ecg.Key, current []AnalysisVersion, limit int) ([]ecg.Key, error)
}

// ErrDuplicate is what Repository.Add wraps when the owner already has an ECG with that id.
// The use case tells a retried upload from a conflicting one by comparing contents.
var ErrDuplicate = errors.New("ecg: the owner already has an ECG with this id")

// BlockPos is a position in an ECG's blocks.
type BlockPos struct {
	Lead, Seq int
}

// After is the position just after b.
func After(b ecg.Block) BlockPos { return BlockPos{Lead: b.Lead, Seq: b.Seq + 1} }

// ListQuery asks for one page of an owner's ECGs.
type ListQuery struct {
	Owner identity.UserID
	// Before, when not empty, starts the page below that key.
	Before ecg.Key
	// Limit is the most ECGs the page holds; it must be positive.
	Limit int
}

// List is a page of ECGs as a repository returns it.
type List struct {
	ECGs []*ecg.ECG
	// More reports whether the owner has ECGs below the last one.
	More bool
}

// AnalysisVersion names one analysis at one version.
type AnalysisVersion struct {
	Name    string
	Version int
}
