package media_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	mediaapp "github.com/acme/postsvc/application/media"
	"github.com/acme/postsvc/domain/identity"
	mediaimg "github.com/acme/postsvc/domain/media/image"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/test/fakes"
)

// beforeThumbnailStored is an object store that runs a function once, right before the
// first thumbnail it is given is stored (its bytes made, the object not there yet): where a
// deletion that commits meanwhile, and removes the image's objects, leaves nothing for it to
// remove.
type beforeThumbnailStored struct {
	*fakes.Objects
	once sync.Once
	fn   func()
}

func (s *beforeThumbnailStored) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (int64, error) {
	if !strings.HasSuffix(key, ".thumb") {
		return s.Objects.Put(ctx, key, r, size, contentType)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return 0, err
	}
	s.once.Do(s.fn)
	return s.Objects.Put(ctx, key, bytes.NewReader(data), size, contentType)
}

// TestThumbnailOfAnImageDeletedMeanwhileLeavesNoObject deletes an image, or its owner, while
// its thumbnail is being made, by the background job or on request, and runs the deletion's
// removal of objects before the thumbnail is stored. The thumbnail must not stay behind:
// nothing refers to it, and only the sweep, an hour later, would remove it. An outside probe
// found such thumbnails left on both databases (thumbnail requests racing DELETE
// /images/{id}: 12 of 16 images; uploads racing the owner's deletion: 2 objects).
func TestThumbnailOfAnImageDeletedMeanwhileLeavesNoObject(t *testing.T) {
	for _, c := range []struct {
		name    string
		byOwner bool // the owner is deleted, not the image
		onJob   bool // made by the thumbnail job, not on request
	}{
		{"image deleted, made on request", false, false},
		{"image deleted, made by the job", false, true},
		{"owner deleted, made on request", true, false},
		{"owner deleted, made by the job", true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, 1<<30)
			owner := f.user()
			store := &beforeThumbnailStored{Objects: f.objects.Objects}
			svc := f.useObjects(store, time.Hour)
			id := f.uploadOne(t, owner)
			jobs := map[string]func(context.Context, ports.Job) error{
				mediaapp.ThumbnailJob: svc.MakeThumbnail, mediaapp.DeleteObjectsJob: svc.DeleteObjects,
			}
			store.fn = func() {
				ctx := context.WithoutCancel(t.Context())
				if c.byOwner {
					err := f.env.Store.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
						return svc.DeleteUserData(ctx, tx, owner.UserID)
					})
					if err == nil {
						err = svc.CleanUpUser(ctx, owner.UserID)
					}
					if err != nil {
						t.Error(err)
					}
					return
				}
				if err := svc.Delete(ctx, owner, string(id)); err != nil {
					t.Error(err)
				}
				if _, err := f.env.Jobs.RunDue(ctx, map[string]func(context.Context, ports.Job) error{mediaapp.DeleteObjectsJob: svc.DeleteObjects}); err != nil {
					t.Error(err)
				}
			}
			if c.onJob {
				if _, err := f.env.RunJobs(t.Context(), jobs); err != nil {
					t.Fatalf("the thumbnail job of an image deleted meanwhile: %v, want done", err)
				}
			} else {
				_, obj, _, err := svc.Thumbnail(t.Context(), identity.Principal{UserID: owner.UserID, Role: identity.RoleUser}, string(id))
				if obj != nil {
					_ = obj.Close()
				}
				if !errors.Is(err, mediaimg.ErrNotFound) {
					t.Fatalf("thumbnail of an image deleted while it was made: %v, want not found", err)
				}
				if _, err := f.env.RunJobs(t.Context(), jobs); err != nil {
					t.Fatal(err)
				}
			}
			if keys := f.objects.keys(t); len(keys) != 0 {
				t.Fatalf("objects left after the image was deleted: %v", keys)
			}
		})
	}
}
