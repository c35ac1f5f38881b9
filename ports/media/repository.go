package media

import (
	"context"

	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/media/image"
	"github.com/acme/postsvc/ports"
)

// Store builds the image repository on a storage scope: the transaction of a unit of work,
// or the pool (ports.UnitOfWork.Pool).
type Store interface {
	Images(tx ports.Scope) Repository
}

// Repository stores image rows and their search documents. Every method wraps
// domain.ErrUnavailable when the database cannot be reached.
type Repository interface {
	// LockOwner locks owner's quota for the rest of the transaction (concurrent uploads of one
	// owner queue behind it) and returns the bytes their images hold;
	// identity.ErrUnknownUser when the owner does not exist. Call it before any other read of
	// the transaction: a database that reads from a snapshot taken at the transaction's first
	// read (MySQL's REPEATABLE READ) then sums every image committed before the lock was
	// granted. On the pool's scope it locks nothing and only reads the sum.
	LockOwner(ctx context.Context, owner identity.UserID) (used int64, err error)
	// Add stores images (all of one owner) with their search documents.
	Add(ctx context.Context, images []*image.Image) error
	// Get returns the image with id, whoever owns it; image.ErrNotFound when there is none.
	// The use case decides who may see it.
	Get(ctx context.Context, id image.ID) (*image.Image, error)
	// Owned returns those of ids that owner has, in no particular order.
	Owned(ctx context.Context, owner identity.UserID, ids []image.ID) ([]*image.Image, error)
	// List returns one page of images, newest (highest id) first.
	List(ctx context.Context, q ListQuery) (List, error)
	// Update stores img's details and its search document; image.ErrNotFound when the row
	// is gone.
	Update(ctx context.Context, img *image.Image) error
	// Delete removes the owner's images with ids; it returns how many it removed.
	Delete(ctx context.Context, owner identity.UserID, ids []image.ID) (int, error)
	// DeleteByOwner removes every image of owner.
	DeleteByOwner(ctx context.Context, owner identity.UserID) error
	// MarkThumbnail records that the image's thumbnail is stored; image.ErrNotFound when the
	// image is gone (deleted while its thumbnail was made: the caller then removes the
	// thumbnail, which the deletion's removal of the image's objects may have run before).
	MarkThumbnail(ctx context.Context, id image.ID) error
	// Existing returns those of ids that have a row, for the sweep of orphaned objects.
	Existing(ctx context.Context, ids []image.ID) (map[image.ID]bool, error)
}

// ListQuery asks for one page of images.
type ListQuery struct {
	// Owner limits the page to one owner's images; empty for public images of everyone.
	Owner identity.UserID
	// Visibility, when set, keeps only images with it. The public listing sets Public.
	Visibility image.Visibility
	// Search, when it holds tokens, keeps only images whose document holds all of them. A
	// search inside a transaction need not see the images that transaction added or changed
	// (MySQL updates its full-text index at commit).
	Search image.Query
	// Before, when not empty, starts the page below that id.
	Before image.ID
	// Limit is the most images the page holds; positive.
	Limit int
}

// List is a page of images as a repository returns it.
type List struct {
	Images []*image.Image
	// More reports whether images follow the last one.
	More bool
}
