package media_test

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// storedButFailed is an object store whose Put of the keys fail picks stores the object and
// then fails, as an S3 PutObject does when the server has the whole body but its answer
// never reaches the client (the request cancelled as the client went away, the connection
// broken): the object exists, and the caller was told it does not.
type storedButFailed struct {
	*fakes.Objects
	fail func(n int) bool // whether the nth Put (from 1) fails after storing
	mu   sync.Mutex
	puts int
}

func (s *storedButFailed) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (int64, error) {
	n, err := s.Objects.Put(ctx, key, r, size, contentType)
	s.mu.Lock()
	s.puts++
	fail := s.fail(s.puts)
	s.mu.Unlock()
	if err == nil && fail {
		return 0, errors.New("read tcp 127.0.0.1:41234->127.0.0.1:7070: read: connection reset by peer")
	}
	return n, err
}

// TestFailedPutThatStoredItsObjectLeavesNothing: an upload whose Put failed after the store
// kept the object removes that object with the rest when it is aborted. It removed only the
// objects whose Put had succeeded, so the object of a Put whose answer was lost stayed,
// without a row, until the sweep an hour later: an outside probe against versitygw, clients
// closing the connection right after sending their whole upload, left such objects.
func TestFailedPutThatStoredItsObjectLeavesNothing(t *testing.T) {
	for _, c := range []struct {
		name  string
		files int
		fail  func(int) bool
	}{
		{"the only file", 1, func(n int) bool { return n == 1 }},
		{"the second of three files", 3, func(n int) bool { return n == 2 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, 1<<30)
			store := &storedButFailed{Objects: f.objects.Objects, fail: c.fail}
			f.useObjects(store, time.Hour)
			files := make([][]byte, c.files)
			for i := range files {
				files[i] = pngBytes(t, 10+i, 10)
			}
			_, err := f.upload(t, f.user(), files...)
			if domain.KindOf(err) != domain.KindUnavailable {
				t.Fatalf("err = %v, want unavailable (503)", err)
			}
			if keys := f.objects.keys(t); len(keys) != 0 {
				t.Fatalf("a failed upload left objects %v", keys)
			}
		})
	}
}

// partialWriter is an object store that keeps partial writes until told to remove them, as
// the S3 store keeps unfinished multipart uploads.
type partialWriter struct {
	*fakes.Objects
	mu    sync.Mutex
	swept []time.Duration
}

func (p *partialWriter) Sweep(_ context.Context, olderThan time.Duration) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.swept = append(p.swept, olderThan)
	return 0, nil
}

var _ ports.ObjectStore = (*partialWriter)(nil)

// TestSweepRemovesPartialWrites: the media sweep (at start, periodically, "media gc") also
// has the store remove the partial writes of killed uploads past the grace. The S3 store's
// Sweep, which aborts the multipart uploads of a file over 8 MiB that a killed process left,
// was called by nothing but its own test: their parts stayed in the bucket for good.
func TestSweepRemovesPartialWrites(t *testing.T) {
	f := newFixture(t, 1<<30)
	store := &partialWriter{Objects: f.objects.Objects}
	svc := f.useObjects(store, 90*time.Minute)
	if _, err := svc.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	if len(store.swept) != 1 || store.swept[0] != 90*time.Minute {
		t.Fatalf("the store's partial writes were swept %v, want once, older than the grace (1h30m)", store.swept)
	}
}

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
			svc := f.useObjects(store, time.Hour)
			id := string(f.uploadOne(t, owner))
			store.gone = func() {
				if c.deleted {
					if err := svc.Delete(context.WithoutCancel(t.Context()), owner, id); err != nil {
						t.Error(err)
					}
				}
			}
			if c.byJob {
				if err := svc.MakeThumbnail(t.Context(), ports.Job{Kind: mediaapp.ThumbnailJob, Payload: []byte(id)}); err != nil {
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

// stallingOpens is an object store whose opening of an image (not of a thumbnail) waits until
// the caller's context ends, as a stalled S3 server's does; entered hears of each.
type stallingOpens struct {
	*fakes.Objects
	entered chan struct{}
}

func (s *stallingOpens) Open(ctx context.Context, key string) (ports.Object, error) {
	if strings.HasSuffix(key, ".thumb") {
		return s.Objects.Open(ctx, key)
	}
	s.entered <- struct{}{}
	<-ctx.Done()
	return nil, fmt.Errorf("s3store: open %s: %w", key, ctx.Err())
}

// TestThumbnailLateOnAStalledStoreIsUnavailable: while the object store does not answer, the
// thumbnail slot holders wait on it, and a thumbnail that is not made in time for lack of a
// slot is 503 unavailable (a dependency), not overloaded (shedding). An outside probe that
// stopped the S3 server got overloaded for the first thumbnail request.
func TestThumbnailLateOnAStalledStoreIsUnavailable(t *testing.T) {
	f := newFixture(t, 1<<30)
	p := f.user()
	imgs, err := f.upload(t, p, pngBytes(t, 5, 5), pngBytes(t, 6, 6))
	if err != nil {
		t.Fatal(err)
	}
	store := &stallingOpens{Objects: f.objects.Objects, entered: make(chan struct{}, 4)}
	svc := mediaapp.NewService(f.env.Store, mediafake.Store{}, store, mediafake.Imaging{}, f.env.Jobs, fakes.Stamps{Board: f.board}, f.board,
		f.env.Clock, f.env.IDs, mediaapp.Settings{QuotaBytes: 1 << 30, SweepGrace: time.Hour, ThumbnailSlots: 1})
	// The holder's work is shared (flight), so it ends at its deadline, not when it is cancelled.
	holder, release := context.WithTimeout(t.Context(), time.Second)
	defer release()
	done := thumbnailInBackground(holder, svc, p, string(imgs[0].ID())) // takes the only slot, then waits on the store
	<-store.entered
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, _, _, err = svc.Thumbnail(ctx, p, string(imgs[1].ID()))
	if domain.KindOf(err) != domain.KindUnavailable {
		t.Fatalf("no slot in time while the slot holder waits on the store: %v, want unavailable", err)
	}
	// A caller that joins the stalled thumbnail's own making stops waiting unavailable too.
	ctx2, cancel2 := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel2()
	if _, _, _, err = svc.Thumbnail(ctx2, p, string(imgs[0].ID())); domain.KindOf(err) != domain.KindUnavailable {
		t.Fatalf("joining a thumbnail that waits on the store: %v, want unavailable", err)
	}
	<-done
}

// fullDisk is an object store whose Puts of thumbnails fail as a full filesystem's do.
type fullDisk struct{ *fakes.Objects }

func (s fullDisk) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (int64, error) {
	if strings.HasSuffix(key, ".thumb") {
		// The first write fails: nothing is read, so the thumbnail's maker sees the failure.
		return 0, errors.New("fsstore: put " + key + ": write /data/media/tmp/.tmp-1: no space left on device")
	}
	return s.Objects.Put(ctx, key, r, size, contentType)
}

// TestThumbnailThatCannotBeStoredIsUnavailable: a thumbnail made on request whose object the
// store cannot write (a full disk) is 503 unavailable, as an upload on that disk is. It was a
// 500 internal_error: an outside probe that filled the data folder got one for every
// thumbnail not yet made, while every other write answered 503.
func TestThumbnailThatCannotBeStoredIsUnavailable(t *testing.T) {
	f := newFixture(t, 1<<30)
	owner := f.user()
	id := string(f.uploadOne(t, owner))
	svc := f.useObjects(fullDisk{f.objects.Objects}, time.Hour)
	_, obj, _, err := svc.Thumbnail(t.Context(), owner, id)
	if obj != nil {
		_ = obj.Close()
	}
	if domain.KindOf(err) != domain.KindUnavailable || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("thumbnail that cannot be stored: %v (kind %v), want unavailable naming the cause", err, domain.KindOf(err))
	}
}
