package ports

import "context"

// Scope is the storage that repositories and the job queue work in: one transaction inside
// UnitOfWork.Do, or the connection pool outside one. The application never looks inside it:
// each context builds its repositories on a scope through its own store (accounts.Store,
// posts.Store), so writes made through one scope commit or roll back together, whichever
// contexts made them, and no interface lists every context's repositories.
type Scope interface {
	// StorageScope marks the implementations; it does nothing.
	StorageScope()
}

// UnitOfWork runs fn in one transaction. It commits when fn returns nil and rolls back when fn
// returns an error or panics, returning that error. Repositories built on tx (and jobs
// enqueued on it) belong to the transaction, so nothing inside fn runs outside it by mistake.
// Keep slow work (password hashing, token signing, cache writes) outside fn.
type UnitOfWork interface {
	Do(ctx context.Context, fn func(ctx context.Context, tx Scope) error) error
	// Pool is the scope outside any transaction: each repository call runs and commits by
	// itself. Use it for reads and single-statement writes.
	Pool() Scope
}
