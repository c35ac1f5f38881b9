// Package media is the contract of the media context's image repository (ports/media): run on
// SQLite, MySQL and the in-memory fake, so they all behave the same, search included.
package media

import (
	"context"
	"crypto/sha256"
	"slices"
	"testing"
	"time"

	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/media/image"
	"github.com/acme/postsvc/ports"
	mediaport "github.com/acme/postsvc/ports/media"
	"github.com/acme/postsvc/test/contract"
)

// Backend is one implementation under test: the media store and the unit of work over the
// same storage, and a way to make and delete the users images belong to (as the accounts
// context would: the media context only needs them to exist, and to go).
type Backend struct {
	UoW   ports.UnitOfWork
	Store mediaport.Store
	// NewUser stores a new user and returns its id.
	NewUser func(t *testing.T) identity.UserID
	// DeleteUser deletes a user's account, as the administrator's use case does (without
	// calling the media context: the storage's own cascade is under test).
	DeleteUser func(t *testing.T, id identity.UserID)
}

// Images is the image repository on the pool.
func (b Backend) Images() mediaport.Repository { return b.Store.Images(b.UoW.Pool()) }

// testTime is a creation time with microseconds, which storage must keep exactly.
var testTime = time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)

// details validates what an owner says about an image, as an upload does.
func details(t testing.TB, vis image.Visibility, description string, tags ...string) image.Details {
	t.Helper()
	v, desc := string(vis), description
	draft := image.DetailsDraft{Visibility: &v, Description: &desc}
	if tags != nil {
		draft.Tags = &tags
	}
	d, err := image.ParseDetails(draft)
	contract.NoErr(t, "image.ParseDetails", err)
	return d
}

// makeImage builds an image of owner of n bytes, as an upload does; nothing is stored. Its id
// is a fresh UUIDv7, so images made later sort after earlier ones.
func makeImage(t testing.TB, owner identity.UserID, filename string, d image.Details, n int64) *image.Image {
	t.Helper()
	sum := sha256.Sum256([]byte(filename + d.Description))
	c := image.Content{Format: image.FormatPNG, Bytes: n, Width: 640, Height: 480, SHA256: sum[:]}
	img, err := image.New(image.ID(contract.NewID(t)), owner, filename, c, d, testTime)
	contract.NoErr(t, "image.New", err)
	return img
}

// addImage builds and stores an image on the pool.
func addImage(t testing.TB, b Backend, owner identity.UserID, filename string, d image.Details, n int64) *image.Image {
	t.Helper()
	img := makeImage(t, owner, filename, d, n)
	contract.NoErr(t, "Add", b.Images().Add(t.Context(), []*image.Image{img}))
	return img
}

// assertSameImage compares everything storage keeps of an image.
func assertSameImage(t testing.TB, got, want *image.Image) {
	t.Helper()
	if got.ID() != want.ID() || got.Owner() != want.Owner() || got.Filename() != want.Filename() {
		t.Fatalf("image {id %s owner %s file %q}, want {id %s owner %s file %q}",
			got.ID(), got.Owner(), got.Filename(), want.ID(), want.Owner(), want.Filename())
	}
	gc, wc := got.Content(), want.Content()
	if gc.Format != wc.Format || gc.Bytes != wc.Bytes || gc.Width != wc.Width || gc.Height != wc.Height ||
		string(gc.SHA256) != string(wc.SHA256) {
		t.Errorf("content = %+v, want %+v", gc, wc)
	}
	gd, wd := got.Details(), want.Details()
	if gd.Visibility != wd.Visibility || gd.Description != wd.Description || !slices.Equal(gd.Tags, wd.Tags) || gd.Tags == nil {
		t.Errorf("details = %+v, want %+v (tags never nil)", gd, wd)
	}
	if got.HasThumbnail() != want.HasThumbnail() {
		t.Errorf("has thumbnail = %v, want %v", got.HasThumbnail(), want.HasThumbnail())
	}
	contract.SameInstant(t, "created_at", got.CreatedAt(), want.CreatedAt())
	if !got.CreatedAt().Equal(want.CreatedAt().Truncate(time.Microsecond)) {
		t.Errorf("created_at = %s, want %s to the microsecond", got.CreatedAt().Format(time.RFC3339Nano), want.CreatedAt().Format(time.RFC3339Nano))
	}
}

func idsOf(imgs []*image.Image) []image.ID {
	out := make([]image.ID, len(imgs))
	for i, img := range imgs {
		out[i] = img.ID()
	}
	return out
}

// sortedIDs returns the ids of imgs sorted, to compare sets.
func sortedIDs(imgs []*image.Image) []image.ID {
	out := idsOf(imgs)
	slices.Sort(out)
	return out
}

// listAll pages through q with limit, checking that each page is newest first, below the
// previous one, full unless it is the last, and that More says whether one follows.
func listAll(t testing.TB, b Backend, q mediaport.ListQuery, limit int) []image.ID {
	t.Helper()
	var all []image.ID
	q.Limit = limit
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("List: paging does not end")
		}
		page, err := b.Images().List(t.Context(), q)
		contract.NoErr(t, "List", err)
		ids := idsOf(page.Images)
		if !slices.Equal(ids, contract.NewestFirst(ids)) {
			t.Fatalf("page %d is not newest first: %v", pages, ids)
		}
		if len(ids) > limit || (page.More && len(ids) != limit) {
			t.Fatalf("page %d holds %d images with More %v, limit %d", pages, len(ids), page.More, limit)
		}
		if q.Before != "" && len(ids) > 0 && ids[0] >= q.Before {
			t.Fatalf("page %d starts at %s, not below the cursor %s", pages, ids[0], q.Before)
		}
		all = append(all, ids...)
		if !page.More {
			return all
		}
		q.Before = ids[len(ids)-1]
	}
}

// used reads the owner's quota use in a unit of work, as an upload does.
func used(t testing.TB, b Backend, owner identity.UserID) int64 {
	t.Helper()
	var n int64
	err := b.UoW.Do(t.Context(), func(ctx context.Context, tx ports.Scope) error {
		var err error
		n, err = b.Store.Images(tx).LockOwner(ctx, owner)
		return err
	})
	contract.NoErr(t, "LockOwner", err)
	return n
}
