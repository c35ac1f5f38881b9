package media

import (
	"context"
	"sync"

	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/media/image"
	"github.com/acme/postsvc/ports"
)

// StampScope is the media context's stamp: every change to a user's stored images that a
// reader of their content must see (details, visibility, deletion) bumps it.
const StampScope = "images"

// maxCachedRows bounds the image rows kept in memory; past it the cache starts again empty.
const maxCachedRows = 100_000

// rows keeps image rows in memory for serving content, the hot path of public images, under
// the same rule as the principals (application/accounts.Principals): a row is used only while
// the board's generation and its owner's "images" stamp are the ones it was read under, so a
// change made through any instance (making an image private, deleting it) applies to the very
// next request. Without a board every row is read from the database.
type rows struct {
	board ports.StampBoard
	mu    sync.RWMutex
	m     map[image.ID]rowEntry
}

type rowEntry struct {
	img   *image.Image
	stamp int64
	gen   uint64
}

// get returns the row of id from memory when the board vouches for it, or reads it.
func (r *rows) get(ctx context.Context, id image.ID, read func(context.Context) (*image.Image, error)) (*image.Image, error) {
	if r.board == nil {
		return read(ctx)
	}
	r.mu.RLock()
	e, ok := r.m[id]
	r.mu.RUnlock()
	if ok && e.gen == r.board.Generation() {
		if s, vouched := r.board.Read(ctx, e.img.Owner()); vouched && s.Get(StampScope) == e.stamp && e.gen == r.board.Generation() {
			return e.img, nil
		}
	}
	// The owner is known only from the row, and the stamp must be read before the row it
	// tags: read the row, then the owner's stamp, then the row again under that stamp.
	gen := r.board.Generation()
	first, err := read(ctx)
	if err != nil {
		r.forget(id)
		return nil, err
	}
	s, vouched := r.board.Read(ctx, first.Owner())
	if !vouched {
		return first, nil
	}
	img, err := read(ctx)
	if err != nil {
		r.forget(id)
		return nil, err
	}
	r.mu.Lock()
	if r.m == nil || len(r.m) >= maxCachedRows {
		r.m = make(map[image.ID]rowEntry)
	}
	r.m[id] = rowEntry{img: img, stamp: s.Get(StampScope), gen: gen}
	r.mu.Unlock()
	return img, nil
}

func (r *rows) forget(id image.ID) {
	r.mu.Lock()
	delete(r.m, id)
	r.mu.Unlock()
}

// bump marks a change to owner's images in tx; see StampScope.
func bump(ctx context.Context, stamps ports.Stamps, tx ports.Scope, owner identity.UserID) error {
	return stamps.Bump(ctx, tx, owner, StampScope)
}
