package media

import (
	"context"
	"io"

	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/media/image"
	"github.com/acme/postsvc/ports"
)

// Service is what the media context offers its HTTP module. A zero Principal (no UserID) is
// an anonymous caller, who may read public images and nothing else; an admin is refused
// everywhere (admins hold no content).
type Service interface {
	// BeginUpload checks the caller and the details every file of the upload gets, and starts
	// an upload that stores nothing until Commit.
	BeginUpload(ctx context.Context, p identity.Principal, d image.DetailsDraft) (Upload, error)
	// List returns a page of the caller's images.
	List(ctx context.Context, p identity.Principal, req ListRequest) (Page, error)
	// ListPublic returns a page of everyone's public images; anonymous callers are welcome.
	ListPublic(ctx context.Context, p identity.Principal, req ListRequest) (Page, error)
	// Get returns an image the caller may see; image.ErrNotFound otherwise.
	Get(ctx context.Context, p identity.Principal, id string) (*image.Image, error)
	// Content opens an image's stored bytes, which the caller closes.
	Content(ctx context.Context, p identity.Principal, id string) (*image.Image, ports.Object, error)
	// Thumbnail opens an image's thumbnail, making and storing it first if the background
	// job has not yet; it returns the thumbnail's content type.
	Thumbnail(ctx context.Context, p identity.Principal, id string) (*image.Image, ports.Object, string, error)
	// Update changes the details of one of the caller's images.
	Update(ctx context.Context, p identity.Principal, id string, d image.DetailsDraft) (*image.Image, error)
	// Delete deletes one of the caller's images.
	Delete(ctx context.Context, p identity.Principal, id string) error
	// DeleteMany deletes the caller's images with ids, all or none: when any is not the
	// caller's it deletes nothing and returns a *NotFoundError listing those ids.
	DeleteMany(ctx context.Context, p identity.Principal, ids []string) error
}

// Upload is one request's files on their way to storage. Files are cleaned and stored one by
// one as they arrive; their images exist only once Commit has stored every row in one unit of
// work. Abort (or a failed Commit) removes the stored objects; whatever a crash leaves behind
// has no row and is swept.
type Upload interface {
	// Add cleans the file r yields and stores it. filename is the part's file name as sent.
	Add(ctx context.Context, filename string, r io.Reader) error
	// Details replaces the details every file of the upload gets (form fields that came after
	// a file part); nil fields keep their value. An invalid draft changes nothing.
	Details(d image.DetailsDraft) error
	// Commit stores the images of every added file, all or none, checking the owner's quota.
	Commit(ctx context.Context) ([]*image.Image, error)
	// Abort removes what was stored; after a successful Commit it does nothing.
	Abort()
}

// ListRequest is a page request with an optional search and visibility filter, as sent.
type ListRequest struct {
	ports.PageRequest
	Query      string
	Visibility string
}

// Page is a page of images with the cursor of the next page ("" on the last).
type Page struct {
	Images     []*image.Image
	NextCursor string
}
