// Package mediafake holds the media context's in-memory fakes for use-case tests: its image
// repository on a fakes.Store. The repository passes the media contract suite
// (test/contract/media), like the real databases: the same owner and visibility scoping, the
// same pages, the same search (every token of the query must be a token of the image's
// document), and images that go with their owner, as the foreign key cascades.
package mediafake

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/media/image"
	"github.com/acme/postsvc/ports"
	mediaport "github.com/acme/postsvc/ports/media"
	"github.com/acme/postsvc/test/fakes"
)

// imagesTable is the images table, as the migrations define it (00007_media.sql).
const imagesTable = "media.images"

func init() {
	// Images go with their owner, as the images table's foreign key does.
	fakes.OnIdentityDeleted(func(v *fakes.View, id identity.UserID) { deleteOwner(v, id) })
}

// imageRow is one image as the databases keep it, with its search document's tokens. Rows
// are replaced, never changed in place: a table's copy for a transaction shares them with the
// committed table.
type imageRow struct {
	id        image.ID
	owner     identity.UserID
	filename  string
	content   image.Content
	details   image.Details
	thumbnail bool
	createdAt time.Time
	tokens    map[string]bool
}

func imagesOf(v *fakes.View) map[image.ID]imageRow {
	return fakes.Table[image.ID, imageRow](v, imagesTable)
}

func deleteOwner(v *fakes.View, owner identity.UserID) {
	all := imagesOf(v)
	for id, row := range all {
		if row.owner == owner {
			delete(all, id)
		}
	}
}

// tokensOf is the set of tokens of the image's search document.
func tokensOf(filename string, d image.Details) map[string]bool {
	out := map[string]bool{}
	for _, t := range strings.Fields(image.SearchDocument(filename, d)) {
		out[t] = true
	}
	return out
}

// toRow keeps what the databases keep of an image: times in UTC to the microsecond, no tags
// as an empty list.
func toRow(img *image.Image) imageRow {
	c := img.Content()
	c.SHA256 = slices.Clone(c.SHA256)
	d := img.Details()
	return imageRow{
		id: img.ID(), owner: img.Owner(), filename: img.Filename(), content: c, details: d,
		thumbnail: img.HasThumbnail(), createdAt: img.CreatedAt().UTC().Truncate(time.Microsecond),
		tokens: tokensOf(img.Filename(), d),
	}
}

func (row imageRow) toDomain() *image.Image {
	c := row.content
	c.SHA256 = slices.Clone(c.SHA256)
	d := row.details
	d.Tags = slices.Clone(d.Tags)
	if d.Tags == nil {
		d.Tags = []string{}
	}
	return image.Rehydrate(row.id, row.owner, row.filename, c, d, row.thumbnail, row.createdAt)
}

// Store implements media.Store (ports/media) on a fakes.Store.
type Store struct{}

var _ mediaport.Store = Store{}

// Images is the image repository on tx.
func (Store) Images(tx ports.Scope) mediaport.Repository { return repo{tx} }

type repo struct{ tx ports.Scope }

// LockOwner needs no lock of its own: the fake store runs one transaction at a time.
func (r repo) LockOwner(_ context.Context, owner identity.UserID) (int64, error) {
	var used int64
	err := fakes.Access(r.tx, false, func(v *fakes.View) error {
		if !fakes.IdentityExists(v, owner) {
			return fmt.Errorf("mediafake: quota of %s: %w", owner, identity.ErrUnknownUser)
		}
		for _, row := range imagesOf(v) {
			if row.owner == owner {
				used += row.content.Bytes
			}
		}
		return nil
	})
	return used, err
}

func (r repo) Add(_ context.Context, images []*image.Image) error {
	if len(images) == 0 {
		return nil
	}
	return fakes.Access(r.tx, true, func(v *fakes.View) error {
		owner := images[0].Owner()
		if !fakes.IdentityExists(v, owner) {
			return fmt.Errorf("mediafake: images of %s: %w", owner, identity.ErrUnknownUser)
		}
		all := imagesOf(v)
		for _, img := range images {
			if img.Owner() != owner {
				return fmt.Errorf("mediafake: one Add holds images of %s and of %s", owner, img.Owner())
			}
			if _, ok := all[img.ID()]; ok {
				return fmt.Errorf("mediafake: images of %s: duplicate id %s", owner, img.ID())
			}
			all[img.ID()] = toRow(img)
		}
		return nil
	})
}

func (r repo) Get(_ context.Context, id image.ID) (*image.Image, error) {
	var out *image.Image
	err := fakes.Access(r.tx, false, func(v *fakes.View) error {
		row, ok := imagesOf(v)[id]
		if !ok {
			return image.ErrNotFound
		}
		out = row.toDomain()
		return nil
	})
	return out, err
}

func (r repo) Owned(_ context.Context, owner identity.UserID, ids []image.ID) ([]*image.Image, error) {
	out := []*image.Image{}
	err := fakes.Access(r.tx, false, func(v *fakes.View) error {
		all := imagesOf(v)
		seen := map[image.ID]bool{}
		for _, id := range ids {
			if row, ok := all[id]; ok && row.owner == owner && !seen[id] {
				seen[id] = true
				out = append(out, row.toDomain())
			}
		}
		return nil
	})
	return out, err
}

func (r repo) List(_ context.Context, q mediaport.ListQuery) (mediaport.List, error) {
	out := mediaport.List{Images: []*image.Image{}}
	if q.Limit <= 0 {
		return out, nil
	}
	err := fakes.Access(r.tx, false, func(v *fakes.View) error {
		all := imagesOf(v)
		var ids []image.ID
		for id, row := range all {
			if listed(row, q) {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		slices.Reverse(ids)
		if len(ids) > q.Limit {
			ids, out.More = ids[:q.Limit], true
		}
		for _, id := range ids {
			out.Images = append(out.Images, all[id].toDomain())
		}
		return nil
	})
	return out, err
}

// listed reports whether q's page may hold row: the owner's images, or everyone's public ones,
// below the cursor, holding every token of the search.
func listed(row imageRow, q mediaport.ListQuery) bool {
	vis := row.details.Visibility
	switch {
	case q.Owner != "" && row.owner != q.Owner,
		q.Owner == "" && vis != image.Public,
		q.Visibility != "" && vis != q.Visibility,
		q.Before != "" && row.id >= q.Before:
		return false
	}
	for _, t := range q.Search.Tokens {
		if !row.tokens[t] {
			return false
		}
	}
	return true
}

func (r repo) Update(_ context.Context, img *image.Image) error {
	return fakes.Access(r.tx, true, func(v *fakes.View) error {
		all := imagesOf(v)
		row, ok := all[img.ID()]
		if !ok || row.owner != img.Owner() {
			return image.ErrNotFound
		}
		row.details = img.Details()
		row.tokens = tokensOf(row.filename, row.details)
		all[img.ID()] = row
		return nil
	})
}

func (r repo) Delete(_ context.Context, owner identity.UserID, ids []image.ID) (int, error) {
	n := 0
	err := fakes.Access(r.tx, true, func(v *fakes.View) error {
		all := imagesOf(v)
		for _, id := range ids {
			if row, ok := all[id]; ok && row.owner == owner {
				delete(all, id)
				n++
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

func (r repo) DeleteByOwner(_ context.Context, owner identity.UserID) error {
	return fakes.Access(r.tx, true, func(v *fakes.View) error {
		deleteOwner(v, owner)
		return nil
	})
}

func (r repo) MarkThumbnail(_ context.Context, id image.ID) error {
	return fakes.Access(r.tx, true, func(v *fakes.View) error {
		all := imagesOf(v)
		row, ok := all[id]
		if !ok {
			return image.ErrNotFound
		}
		row.thumbnail = true
		all[id] = row
		return nil
	})
}

func (r repo) Existing(_ context.Context, ids []image.ID) (map[image.ID]bool, error) {
	out := map[image.ID]bool{}
	err := fakes.Access(r.tx, false, func(v *fakes.View) error {
		all := imagesOf(v)
		for _, id := range ids {
			if _, ok := all[id]; ok {
				out[id] = true
			}
		}
		return nil
	})
	return out, err
}
