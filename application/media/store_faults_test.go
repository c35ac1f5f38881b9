package media_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	mediaapp "github.com/acme/postsvc/application/media"
	"github.com/acme/postsvc/domain"
	mediaimg "github.com/acme/postsvc/domain/media/image"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/test/fakes"
	"github.com/acme/postsvc/test/fakes/mediafake"
)

// vanishing is an object store whose content objects, once opened, fail their reads as an S3
// object deleted after it was opened does (the filesystem keeps an open file readable); gone
// runs first, once (the test deletes the image there, or not).
type vanishing struct {
	*fakes.Objects
	gone func()
	once sync.Once
}

func (v *vanishing) Open(ctx context.Context, key string) (ports.Object, error) {
	obj, err := v.Objects.Open(ctx, key)
	if err != nil || strings.HasSuffix(key, ".thumb") {
		return obj, err
	}
	v.once.Do(v.gone)
	_ = v.Delete(ctx, key)
	return vanished{obj}, nil
}

type vanished struct{ ports.Object }

func (v vanished) Read([]byte) (int, error) {
	return 0, fmt.Errorf("s3store: read %s: %w", v.Info().Key, ports.ErrObjectNotFound)
}

// TestThumbnailOfAnImageDeletedWhileItIsReadIsNotFound: an image deleted while its thumbnail
// is being made from its object, which the deletion's job removes between the opening and
// the reads, is not found (404), on request and by the job; when the row is still there the
// missing object stays a fault. It was a 500: an outside probe against versitygw, thumbnail
// requests racing DELETE /images/{id} on two instances, got 1 of 90.
func TestThumbnailOfAnImageDeletedWhileItIsReadIsNotFound(t *testing.T) {
	for _, c := range []struct {
		name           string
		deleted, byJob bool
	}{
		{"deleted, on request", true, false},
		{"deleted, by the job", true, true},
		{"not deleted, on request", false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, 1<<30)
			owner := f.user()
			store := &vanishing{Objects: f.objects.Objects}
			svc := mediaapp.NewService(f.env.Store, mediafake.Store{}, store, mediafake.Imaging{}, f.env.Jobs, fakes.Stamps{Board: f.board}, f.board,
				f.env.Clock, f.env.IDs, mediaapp.Settings{QuotaBytes: 1 << 30, SweepGrace: time.Hour})
			up, err := svc.BeginUpload(t.Context(), owner, mediaimg.DetailsDraft{})
			if err != nil {
				t.Fatal(err)
			}
			if err := up.Add(t.Context(), "a.png", bytes.NewReader(pngBytes(t, 12, 12))); err != nil {
				t.Fatal(err)
			}
			imgs, err := up.Commit(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			id := string(imgs[0].ID())
			store.gone = func() {
				if c.deleted {
					if err := svc.Delete(context.WithoutCancel(t.Context()), owner, id); err != nil {
						t.Error(err)
					}
				}
			}
			if c.byJob {
				err = svc.MakeThumbnail(t.Context(), ports.Job{Kind: mediaapp.ThumbnailJob, Payload: []byte(id)})
				if err != nil {
					t.Fatalf("the thumbnail job of an image deleted while it ran: %v, want done", err)
				}
				return
			}
			_, obj, _, err := svc.Thumbnail(t.Context(), owner, id)
			if obj != nil {
				_ = obj.Close()
			}
			switch {
			case c.deleted && !errors.Is(err, mediaimg.ErrNotFound):
				t.Fatalf("thumbnail of an image deleted while it was read: %v (kind %v), want not found", err, domain.KindOf(err))
			case !c.deleted && (err == nil || domain.KindOf(err) != domain.KindInternal):
				t.Fatalf("thumbnail of an image whose object vanished under its row: %v, want an internal error", err)
			}
		})
	}
}
