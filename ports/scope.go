package ports

// Scope is the storage that repositories and the job queue work in: one transaction inside
// UnitOfWork.Do, or the connection pool outside one. The application never looks inside it:
// the adapter that made a scope is the one that builds repositories (and enqueues jobs) on it,
// so writes made through one scope commit or roll back together, whichever context made them.
type Scope interface {
	// StorageScope marks the implementations; it does nothing.
	StorageScope()
}
