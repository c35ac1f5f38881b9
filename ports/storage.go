package ports

import (
	"context"
	"errors"
	"io"
	"time"
)

// Object storage: large immutable blobs (image files, thumbnails) kept outside the database.
// The database row that names an object is the truth; an object without a row is garbage that
// a sweep removes, and a row is only committed once its object is whole in storage.

// ErrObjectNotFound is returned by Open and Stat for a key that holds no object.
var ErrObjectNotFound = errors.New("object not found")

// MaxObjectKeyBytes bounds an object key. Keys are made by the service (ids and fixed
// suffixes), never by clients: letters, digits, '-', '_', '.' and '/' as a separator, no
// empty, "." or ".." segment.
const MaxObjectKeyBytes = 512

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key      string
	Size     int64
	Modified time.Time
}

// Object is an open stored object: it reads from any offset (Seek), so that it can serve
// HTTP Range requests, and must be closed.
type Object interface {
	io.ReadSeekCloser
	Info() ObjectInfo
}

// ReadBounder is what an Object also is when it reads from a remote store: BoundReads tells
// it that its reader will read nothing at or past end (one past the last byte wanted), so
// that it asks the store for no more (an S3 GET then asks for the range up to end, not
// everything from its offset). A hint: a read past end still works, at the cost of another
// request. The content routes call it for the byte ranges they serve.
type ReadBounder interface {
	BoundReads(end int64)
}

// ObjectStore keeps objects under keys. Implementations: the filesystem (the default) and S3.
type ObjectStore interface {
	// Put stores everything r yields under key, replacing any object there. It is all or
	// nothing: a failed, cancelled or killed Put never leaves a partial object under key
	// (a crash may leave a temporary that List does not report and the store cleans up).
	// size is the exact length when known, -1 otherwise; contentType is recorded where the
	// store keeps one. It returns the stored size.
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (int64, error)
	// Open opens the object under key; ErrObjectNotFound when there is none.
	Open(ctx context.Context, key string) (Object, error)
	// Stat describes the object under key; ErrObjectNotFound when there is none.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// Delete removes the object under key. A missing object is not an error (deletes are
	// retried after crashes).
	Delete(ctx context.Context, key string) error
	// List calls fn for every object whose key starts with prefix, in no particular order,
	// until fn returns an error, which List returns.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
	// Check reports whether the store can be reached and used (the readiness check).
	Check(ctx context.Context) error
}

// PartialWriteSweeper is what an ObjectStore also is when killed writes can leave something
// behind that is no object and that List never reports (the filesystem store's temporaries,
// S3's unfinished multipart uploads): Sweep removes what is older than olderThan and returns
// how many it removed. The media sweep calls it on stores that have it.
type PartialWriteSweeper interface {
	Sweep(ctx context.Context, olderThan time.Duration) (int, error)
}
