package gormstore

import "database/sql"

// ClaimQuery is the select of q's claims, and ClaimTx the options of their transaction, for
// the tests that hold rows the way a claim in flight on another instance does.
func (q *JobQueue) ClaimQuery() string { return q.claimQuery }

// ClaimTx returns the options of q's claim transactions; nil means the driver's defaults.
func (q *JobQueue) ClaimTx() *sql.TxOptions {
	if len(q.claimTx) == 0 {
		return nil
	}
	return q.claimTx[0]
}
