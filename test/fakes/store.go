// Package fakes holds in-memory implementations of the shared kernel's ports for use-case
// tests: a generic transactional store (the unit of work and its scopes), the job queue, a
// clock, ids and a throttle. Each bounded context keeps its own fakes in a package of its own
// beside this one (accountsfake, postsfake), built on Store's tables, so a new context adds
// its fakes without touching anyone else's. The fakes pass the same contract suites as the
// real databases (test/contract), so a use-case test cannot pass against a fake that behaves
// differently.
package fakes

import (
	"context"
	"fmt"
	"maps"
	"sync"

	"github.com/acme/postsvc/ports"
)

// Store is an in-memory database of named tables, which each context's fakes define with
// Table. It implements ports.UnitOfWork: reads outside a transaction see committed state; a
// transaction works on private copies of the tables it touches and publishes them on commit,
// so a rollback leaves nothing behind, as with a real database. Transactions run one at a
// time, like SQLite's single writer.
type Store struct {
	mu        sync.RWMutex
	committed map[string]cloner
	txMu      sync.Mutex // serialises transactions and auto-committed writes

	failMu   sync.Mutex
	failNext error
}

var _ ports.UnitOfWork = (*Store)(nil)

// NewStore returns an empty store.
func NewStore() *Store { return &Store{committed: map[string]cloner{}} }

// cloner is a table: a map that can copy itself for a transaction.
type cloner interface{ cloneTable() cloner }

// rows is one table's rows by key.
type rows[K comparable, V any] map[K]V

func (r rows[K, V]) cloneTable() cloner { return maps.Clone(r) }

// FailNext makes the next repository call of any context's fake fail with err (fault
// injection).
func (s *Store) FailNext(err error) {
	s.failMu.Lock()
	s.failNext = err
	s.failMu.Unlock()
}

// Injected returns, once, the error set by FailNext. Every fake repository method calls it
// first (through Access).
func (s *Store) Injected() error {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	err := s.failNext
	s.failNext = nil
	return err
}

// scope is a ports.Scope of a Store: the pool (tx nil) or one transaction.
type scope struct {
	s  *Store
	tx *tx
}

// StorageScope marks scope as a ports.Scope.
func (scope) StorageScope() {}

// tx is a transaction's private state: copies of the tables it touched, and what to run once
// it commits.
type tx struct {
	tables      map[string]cloner
	afterCommit []func()
}

// Pool is the scope outside any transaction.
func (s *Store) Pool() ports.Scope { return scope{s: s} }

// Do runs fn on private copies of the tables and publishes them only when fn returns nil
// without panicking.
func (s *Store) Do(ctx context.Context, fn func(ctx context.Context, tx ports.Scope) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.txMu.Lock()
	defer s.txMu.Unlock()
	t := &tx{tables: map[string]cloner{}}
	if err := fn(ctx, scope{s: s, tx: t}); err != nil {
		return err // the copies are dropped: rollback
	}
	s.mu.Lock()
	maps.Copy(s.committed, t.tables)
	s.mu.Unlock()
	for _, f := range t.afterCommit {
		f()
	}
	return nil
}

// AfterCommit runs f once sc's transaction has committed, or at once on the pool's scope. The
// fake job queue uses it: a job enqueued in a transaction that rolls back is never seen.
func AfterCommit(sc ports.Scope, f func()) error {
	v, err := own(sc)
	if err != nil {
		return err
	}
	if v.tx == nil {
		f()
		return nil
	}
	v.tx.afterCommit = append(v.tx.afterCommit, f)
	return nil
}

func own(sc ports.Scope) (scope, error) {
	v, ok := sc.(scope)
	if !ok || v.s == nil {
		return scope{}, fmt.Errorf("fakes: %T is not a scope of a fake store", sc)
	}
	return v, nil
}

// View is what Access hands its function: the tables as the scope sees them.
type View struct {
	s        *Store
	tables   map[string]cloner // the transaction's copies, or a write's copies on the pool
	readOnly bool
}

// Access runs fn on sc's view of the tables. write says whether fn changes them: on the pool,
// a write is a transaction of its own (copied, then published when fn succeeds), and reads see
// committed state. It first returns an error set by FailNext, if any.
func Access(sc ports.Scope, write bool, fn func(v *View) error) error {
	v, err := own(sc)
	if err != nil {
		return err
	}
	if err := v.s.Injected(); err != nil {
		return err
	}
	if v.tx != nil {
		return fn(&View{s: v.s, tables: v.tx.tables})
	}
	if !write {
		v.s.mu.RLock()
		defer v.s.mu.RUnlock()
		return fn(&View{s: v.s, readOnly: true})
	}
	v.s.txMu.Lock()
	defer v.s.txMu.Unlock()
	view := &View{s: v.s, tables: map[string]cloner{}}
	if err := fn(view); err != nil {
		return err
	}
	v.s.mu.Lock()
	maps.Copy(v.s.committed, view.tables)
	v.s.mu.Unlock()
	return nil
}

// Table returns the rows of the table name in v, created empty on first use. Rows are values
// (copies of the aggregates), never shared with callers. In a writing view the map is the
// view's own copy, so changes reach the store only when the view commits.
func Table[K comparable, V any](v *View, name string) map[K]V {
	if v.readOnly {
		if t, ok := v.s.committed[name].(rows[K, V]); ok {
			return t
		}
		return map[K]V{}
	}
	if t, ok := v.tables[name].(rows[K, V]); ok {
		return t
	}
	var t rows[K, V]
	if c, ok := v.s.committed[name].(rows[K, V]); ok {
		t, _ = c.cloneTable().(rows[K, V])
	} else {
		t = rows[K, V]{}
	}
	v.tables[name] = t
	return t
}
