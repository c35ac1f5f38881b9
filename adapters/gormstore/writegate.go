package gormstore

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// writeGate admits one unit of work at a time to a SQLite database, in the order they
// arrive.
//
// SQLite has one writer at a time, and every unit of work begins IMMEDIATE, taking the write
// lock at BEGIN. Left to SQLite, the transactions that find the lock taken wait in its busy
// handler, which sleeps and polls (1 ms, 2 ms, 5 ms, ... up to 100 ms between tries) instead
// of queueing: the lock sits free while its next holder sleeps, the writer that has waited
// longest is no more likely to win it than one that just came, and one that keeps losing
// fails with SQLITE_BUSY after busy_timeout although the lock was free many times. One
// process owns a SQLite file (the file lock of filelock.go), so the lock can be queued in Go
// instead: the next unit of work starts the moment the last one ends, first come first
// served, and waits as long as its context allows, as it does for a pooled connection.
// Writes outside units of work (job claims, single-statement repository writes) still meet
// the units of work in SQLite's own lock, as before.
//
// It is a GORM plugin so that it belongs to the pool that Open returned: every unit of work
// on that pool shares it, and it goes away with the pool.
type writeGate struct{ turn chan struct{} }

const writeGateName = "gormstore:sqlite-write-gate"

func newWriteGate() *writeGate { return &writeGate{turn: make(chan struct{}, 1)} }

func (*writeGate) Name() string { return writeGateName }

func (*writeGate) Initialize(*gorm.DB) error { return nil }

// enterWriteGate waits for db's turn to write, when db is a SQLite pool that Open returned,
// and returns the function that ends the turn. A db already in a transaction (a nested unit
// of work, which becomes a savepoint) holds the turn already and passes at once, as does a
// MySQL pool, whose row locks let writers run side by side. It gives up when ctx ends; a
// deadline that passed is reported as domain.ErrUnavailable, like a lock wait that timed out.
func enterWriteGate(ctx context.Context, db *gorm.DB) (func(), error) {
	gate, ok := db.Plugins[writeGateName].(*writeGate)
	if !ok {
		return func() {}, nil
	}
	if _, inTx := db.Statement.ConnPool.(gorm.TxCommitter); inTx {
		return func() {}, nil
	}
	select {
	case gate.turn <- struct{}{}:
		return func() { <-gate.turn }, nil
	case <-ctx.Done():
		return nil, MapErr(fmt.Errorf("gormstore: waiting for the SQLite write turn: %w", context.Cause(ctx)))
	}
}
