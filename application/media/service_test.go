package media_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	mediaapp "github.com/acme/postsvc/application/media"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/identity"
	mediaimg "github.com/acme/postsvc/domain/media/image"
	"github.com/acme/postsvc/ports"
	mediaport "github.com/acme/postsvc/ports/media"
	"github.com/acme/postsvc/test/fakes"
	"github.com/acme/postsvc/test/fakes/mediafake"
)

type fixture struct {
	env     *fakes.Env
	objects *objects
	board   *fakes.Board
	svc     *mediaapp.Service
	quota   int64
}

// objects is the in-memory object store with a helper to list its keys.
type objects struct{ *fakes.Objects }

func (o objects) keys(*testing.T) []string { return o.Keys() }

func newFixture(t *testing.T, quota int64) *fixture {
	t.Helper()
	env := fakes.NewEnv()
	f := &fixture{env: env, objects: &objects{fakes.NewObjects(env.Clock)}, board: fakes.NewBoard(), quota: quota}
	f.useObjects(f.objects, time.Hour)
	return f
}

// useObjects makes the fixture's service store its objects in store (one that wraps
// f.objects, to inject a fault), sweeping what is older than sweepGrace, and returns it.
func (f *fixture) useObjects(store ports.ObjectStore, sweepGrace time.Duration) *mediaapp.Service {
	f.svc = mediaapp.NewService(f.env.Store, mediafake.Store{}, store, mediafake.Imaging{}, f.env.Jobs, fakes.Stamps{Board: f.board}, f.board,
		f.env.Clock, f.env.IDs, mediaapp.Settings{QuotaBytes: f.quota, SweepGrace: sweepGrace})
	return f.svc
}

// uploadOne uploads one small PNG for p and returns its image's id.
func (f *fixture) uploadOne(t *testing.T, p identity.Principal) mediaimg.ID {
	t.Helper()
	imgs, err := f.upload(t, p, pngBytes(t, 12, 12))
	if err != nil {
		t.Fatal(err)
	}
	return imgs[0].ID()
}

func (f *fixture) user() identity.Principal {
	return identity.Principal{UserID: f.env.NewUser(), Role: identity.RoleUser}
}

func (f *fixture) runJobs(t *testing.T) {
	t.Helper()
	if _, err := f.env.RunJobs(t.Context(), map[string]func(context.Context, ports.Job) error{
		mediaapp.ThumbnailJob: f.svc.MakeThumbnail, mediaapp.DeleteObjectsJob: f.svc.DeleteObjects,
	}); err != nil {
		t.Fatal(err)
	}
}

func pngBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	img.Set(0, 0, color.RGBA{1, 2, 3, 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func (f *fixture) upload(t *testing.T, p identity.Principal, files ...[]byte) ([]*mediaimg.Image, error) {
	t.Helper()
	up, err := f.svc.BeginUpload(t.Context(), p, mediaimg.DetailsDraft{})
	if err != nil {
		return nil, err
	}
	defer up.Abort()
	for i, data := range files {
		if err := up.Add(t.Context(), "f"+string(rune('a'+i))+".png", bytes.NewReader(data)); err != nil {
			return nil, err
		}
	}
	return up.Commit(t.Context())
}

func TestUploadStoresObjectsAndRowsTogether(t *testing.T) {
	f := newFixture(t, 1<<30)
	p := f.user()
	imgs, err := f.upload(t, p, pngBytes(t, 30, 20), pngBytes(t, 300, 20))
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 2 || len(f.objects.keys(t)) != 2 {
		t.Fatalf("%d images, %d objects; want 2 and 2", len(imgs), len(f.objects.keys(t)))
	}
	// The thumbnail jobs committed with the rows make the thumbnails.
	f.runJobs(t)
	if got := len(f.objects.keys(t)); got != 4 {
		t.Fatalf("%d objects after the thumbnail jobs, want 4", got)
	}
	img, err := f.svc.Get(t.Context(), p, string(imgs[1].ID()))
	if err != nil || !img.HasThumbnail() {
		t.Fatalf("image after its job: %v, thumbnail %v", err, img != nil && img.HasThumbnail())
	}
}

func TestRefusedFileStoresNothing(t *testing.T) {
	f := newFixture(t, 1<<30)
	p := f.user()
	_, err := f.upload(t, p, pngBytes(t, 10, 10), []byte("not an image at all"))
	if domain.KindOf(err) != domain.KindUnsupported || !strings.Contains(err.Error(), `"fb.png"`) {
		t.Fatalf("err = %v, want 415 naming fb.png", err)
	}
	if keys := f.objects.keys(t); len(keys) != 0 {
		t.Fatalf("a refused upload left objects %v", keys)
	}
	page, _ := f.svc.List(t.Context(), p, mediaport.ListRequest{})
	if len(page.Images) != 0 {
		t.Fatal("a refused upload left rows")
	}
}

func TestStorageFailureIsUnavailableAndStoresNothing(t *testing.T) {
	f := newFixture(t, 1<<30)
	p := f.user()
	f.objects.FailPut = errors.New("disk on fire")
	_, err := f.upload(t, p, pngBytes(t, 10, 10))
	if domain.KindOf(err) != domain.KindUnavailable {
		t.Fatalf("err = %v, want unavailable (503)", err)
	}
	if keys := f.objects.keys(t); len(keys) != 0 {
		t.Fatalf("objects %v", keys)
	}
}

func TestQuotaIsCheckedWhileReadingAndAtCommit(t *testing.T) {
	file := pngBytes(t, 60, 60)
	f := newFixture(t, int64(len(file))*2+int64(len(file))/2)
	p := f.user()
	if _, err := f.upload(t, p, file, file); err != nil {
		t.Fatal(err)
	}
	_, err := f.upload(t, p, file)
	if !errors.Is(err, mediaimg.ErrQuotaExceeded) {
		t.Fatalf("err = %v, want quota exceeded", err)
	}
	if got := len(f.objects.keys(t)); got != 2 {
		t.Fatalf("%d objects after the refused upload, want the 2 stored before", got)
	}
	// An owner at the quota is refused before any file is read.
	f2 := newFixture(t, int64(len(file)))
	p2 := f2.user()
	if _, err := f2.upload(t, p2, file); err != nil {
		t.Fatal(err)
	}
	if _, err := f2.svc.BeginUpload(t.Context(), p2, mediaimg.DetailsDraft{}); !errors.Is(err, mediaimg.ErrQuotaExceeded) {
		t.Fatalf("BeginUpload at the quota: %v", err)
	}
}

func TestDeleteRemovesObjectsOnlyAfterCommitThroughTheJob(t *testing.T) {
	f := newFixture(t, 1<<30)
	p := f.user()
	imgs, err := f.upload(t, p, pngBytes(t, 10, 10), pngBytes(t, 12, 12))
	if err != nil {
		t.Fatal(err)
	}
	f.runJobs(t) // thumbnails
	other := f.user()
	// Bulk delete naming an id that is not the caller's deletes nothing.
	err = f.svc.DeleteMany(t.Context(), other, []string{string(imgs[0].ID())})
	var withIDs *domain.IDsError
	if !errors.As(err, &withIDs) || len(withIDs.IDs) != 1 || withIDs.IDs[0] != string(imgs[0].ID()) {
		t.Fatalf("err = %v, want a 404 listing the id", err)
	}
	if want := `1 of the ids is not an image of yours (listed under "ids"); nothing was deleted.`; err.Error() != want {
		t.Errorf("message %q, want %q", err.Error(), want)
	}
	err = f.svc.DeleteMany(t.Context(), other, []string{string(imgs[0].ID()), string(imgs[1].ID())})
	if want := `2 of the ids are not images of yours (listed under "ids"); nothing was deleted.`; err == nil || err.Error() != want {
		t.Errorf("message %v, want %q", err, want)
	}
	if err := f.svc.DeleteMany(t.Context(), p, []string{string(imgs[0].ID()), string(imgs[1].ID())}); err != nil {
		t.Fatal(err)
	}
	if got := len(f.objects.keys(t)); got != 4 {
		t.Fatalf("%d objects right after the delete committed, want 4 until the job runs", got)
	}
	f.runJobs(t)
	if keys := f.objects.keys(t); len(keys) != 0 {
		t.Fatalf("objects %v left after the delete job", keys)
	}
	if _, err := f.svc.Get(t.Context(), p, string(imgs[0].ID())); !errors.Is(err, mediaimg.ErrNotFound) {
		t.Fatalf("a deleted image: %v", err)
	}
	for _, bad := range [][]string{nil, make([]string, 101)} {
		if err := f.svc.DeleteMany(t.Context(), p, bad); domain.KindOf(err) != domain.KindInvalid {
			t.Errorf("%d ids: %v, want 422", len(bad), err)
		}
	}
}

func TestSweepRemovesOnlyOldOrphans(t *testing.T) {
	f := newFixture(t, 1<<30)
	p := f.user()
	imgs, err := f.upload(t, p, pngBytes(t, 10, 10))
	if err != nil {
		t.Fatal(err)
	}
	orphan := mediaimg.ContentKey(p.UserID, "0190a1b2-0000-7000-8000-00000000beef")
	if _, err := f.objects.Put(t.Context(), orphan, strings.NewReader("left by a killed upload"), -1, ""); err != nil {
		t.Fatal(err)
	}
	foreign := "other/keep-me"
	if _, err := f.objects.Put(t.Context(), foreign, strings.NewReader("not the sweep's"), -1, ""); err != nil {
		t.Fatal(err)
	}
	// Young orphans may belong to an upload about to commit: kept.
	if n, err := f.svc.Sweep(t.Context()); err != nil || n != 0 {
		t.Fatalf("sweep of young objects removed %d, %v", n, err)
	}
	f.env.Clock.Advance(2 * time.Hour)
	if n, err := f.svc.Sweep(t.Context()); err != nil || n != 1 {
		t.Fatalf("sweep removed %d, %v; want the one orphan", n, err)
	}
	keys := f.objects.keys(t)
	if len(keys) != 2 || !strings.Contains(strings.Join(keys, " "), string(imgs[0].ID())) || !strings.Contains(strings.Join(keys, " "), foreign) {
		t.Fatalf("objects after the sweep: %v", keys)
	}
}

func TestAccessRules(t *testing.T) {
	f := newFixture(t, 1<<30)
	owner, other := f.user(), f.user()
	admin := identity.Principal{UserID: f.env.NewUser(), Role: identity.RoleAdmin}
	imgs, err := f.upload(t, owner, pngBytes(t, 10, 10))
	if err != nil {
		t.Fatal(err)
	}
	id := string(imgs[0].ID())
	for name, p := range map[string]identity.Principal{"anonymous": {}, "other": other} {
		if _, err := f.svc.Get(t.Context(), p, id); !errors.Is(err, mediaimg.ErrNotFound) {
			t.Errorf("%s reads a private image: %v", name, err)
		}
	}
	if _, err := f.svc.Get(t.Context(), admin, id); !errors.Is(err, domain.ErrForbidden) {
		t.Errorf("admin: %v, want forbidden", err)
	}
	public := "public"
	if _, err := f.svc.Update(t.Context(), owner, id, mediaimg.DetailsDraft{Visibility: &public}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Get(t.Context(), identity.Principal{}, id); err != nil {
		t.Errorf("anonymous cannot read a public image: %v", err)
	}
	if _, err := f.svc.Update(t.Context(), other, id, mediaimg.DetailsDraft{Visibility: &public}); !errors.Is(err, mediaimg.ErrNotFound) {
		t.Errorf("another user updates the image: %v", err)
	}
	if _, err := f.svc.List(t.Context(), identity.Principal{}, mediaport.ListRequest{}); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Errorf("anonymous lists: %v", err)
	}
	// The thumbnail is made on first request when the job has not run, then served from
	// storage.
	_, obj, ct, err := f.svc.Thumbnail(t.Context(), identity.Principal{}, id)
	if err != nil || ct != "image/png" {
		t.Fatalf("thumbnail: %v %q", err, ct)
	}
	_ = obj.Close()
	img, _ := f.svc.Get(t.Context(), owner, id)
	if !img.HasThumbnail() {
		t.Fatal("a thumbnail made on request is not recorded")
	}
}

func TestStatsCountUploadsRefusalsAndSweeps(t *testing.T) {
	f := newFixture(t, 1<<30)
	p := f.user()
	if _, err := f.upload(t, p, pngBytes(t, 10, 10), pngBytes(t, 11, 11)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.upload(t, p, []byte("nope")); err == nil {
		t.Fatal("a non-image was accepted")
	}
	f.runJobs(t)
	st := f.svc.Stats()
	if st.Uploaded != 2 || st.UploadedBytes <= 0 || st.Refused != 1 || st.Thumbnails != 2 || st.Swept != 0 {
		t.Fatalf("stats %+v, want 2 uploaded, 1 refused, 2 thumbnails", st)
	}
}

// gatedImaging counts the thumbnails being made at once and holds each until released.
type gatedImaging struct {
	mediaport.Imaging
	mu      sync.Mutex
	inside  int
	most    int
	release chan struct{}
}

// gatedService is a media service on f whose thumbnails are made by a gatedImaging, with
// slots thumbnail slots.
func (f *fixture) gatedService(slots int) (*mediaapp.Service, *gatedImaging) {
	gate := &gatedImaging{Imaging: mediafake.Imaging{}, release: make(chan struct{})}
	svc := mediaapp.NewService(f.env.Store, mediafake.Store{}, f.objects, gate, f.env.Jobs, fakes.Stamps{Board: f.board}, f.board, f.env.Clock, f.env.IDs,
		mediaapp.Settings{QuotaBytes: 1 << 30, SweepGrace: time.Hour, ThumbnailSlots: slots})
	return svc, gate
}

// thumbnailInBackground asks svc for id's thumbnail on a goroutine of its own and closes
// the channel it returns when the answer came, whatever it was.
func thumbnailInBackground(ctx context.Context, svc *mediaapp.Service, p identity.Principal, id string) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, obj, _, err := svc.Thumbnail(ctx, p, id); err == nil {
			_ = obj.Close()
		}
	}()
	return done
}

// waitInside waits until n thumbnails are being made.
func (g *gatedImaging) waitInside(n int) {
	for {
		g.mu.Lock()
		inside := g.inside
		g.mu.Unlock()
		if inside == n {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func (g *gatedImaging) Thumbnail(ctx context.Context, r io.Reader, w io.Writer, side int) (mediaport.Thumbnail, error) {
	g.mu.Lock()
	g.inside++
	g.most = max(g.most, g.inside)
	g.mu.Unlock()
	<-g.release
	g.mu.Lock()
	g.inside--
	g.mu.Unlock()
	return g.Imaging.Thumbnail(ctx, r, w, side)
}

func TestThumbnailsAreMadeAFewAtATime(t *testing.T) {
	f := newFixture(t, 1<<30)
	svc, gate := f.gatedService(2)
	p := f.user()
	imgs, err := f.upload(t, p, pngBytes(t, 5, 5), pngBytes(t, 6, 6), pngBytes(t, 7, 7), pngBytes(t, 8, 8))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, img := range append(imgs, imgs[0]) { // the first twice: made once
		wg.Go(func() {
			_, obj, _, err := svc.Thumbnail(t.Context(), p, string(img.ID()))
			if err != nil {
				t.Error(err)
				return
			}
			_ = obj.Close()
		})
	}
	time.Sleep(100 * time.Millisecond)
	for range 4 {
		gate.release <- struct{}{}
	}
	wg.Wait()
	if gate.most != 2 {
		t.Fatalf("%d thumbnails were made at once, want the 2 slots", gate.most)
	}
}

func TestDetailsAfterTheFirstFileApplyToEveryFile(t *testing.T) {
	f := newFixture(t, 1<<30)
	p := f.user()
	up, err := f.svc.BeginUpload(t.Context(), p, mediaimg.DetailsDraft{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a.png", "b.png"} {
		if err := up.Add(t.Context(), name, bytes.NewReader(pngBytes(t, 4, 4))); err != nil {
			t.Fatal(err)
		}
	}
	bad := "hidden"
	if err := up.Details(mediaimg.DetailsDraft{Visibility: &bad}); domain.KindOf(err) != domain.KindInvalid {
		t.Fatalf("an invalid late field: %v, want 422", err)
	}
	public := "public"
	if err := up.Details(mediaimg.DetailsDraft{Visibility: &public}); err != nil {
		t.Fatal(err)
	}
	imgs, err := up.Commit(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		if !img.IsPublic() {
			t.Fatalf("%s is %s, want the late field applied", img.Filename(), img.Visibility())
		}
	}
}

func TestThumbnailWaitingPastItsDeadlineIsOverloaded(t *testing.T) {
	f := newFixture(t, 1<<30)
	svc, gate := f.gatedService(1)
	p := f.user()
	imgs, err := f.upload(t, p, pngBytes(t, 5, 5), pngBytes(t, 6, 6))
	if err != nil {
		t.Fatal(err)
	}
	done := thumbnailInBackground(t.Context(), svc, p, string(imgs[0].ID()))
	gate.waitInside(1)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, _, _, err = svc.Thumbnail(ctx, p, string(imgs[1].ID()))
	if domain.KindOf(err) != domain.KindOverloaded {
		t.Fatalf("err = %v, want overloaded (503 with Retry-After)", err)
	}
	gate.release <- struct{}{}
	<-done
}

// failingAdds is the fake store whose Add fails as a database outage would.
type failingAdds struct{ mediafake.Store }

func (s failingAdds) Images(tx ports.Scope) mediaport.Repository {
	return failingRepo{s.Store.Images(tx)}
}

type failingRepo struct{ mediaport.Repository }

func (failingRepo) Add(context.Context, []*mediaimg.Image) error {
	return fmt.Errorf("images.add: %w", domain.ErrUnavailable)
}

func TestCommitOfUnknownOutcomeKeepsObjectsForTheSweep(t *testing.T) {
	f := newFixture(t, 1<<30)
	svc := mediaapp.NewService(f.env.Store, failingAdds{}, f.objects, mediafake.Imaging{}, f.env.Jobs, fakes.Stamps{Board: f.board}, f.board, f.env.Clock, f.env.IDs,
		mediaapp.Settings{QuotaBytes: 1 << 30, SweepGrace: time.Hour})
	p := f.user()
	up, err := svc.BeginUpload(t.Context(), p, mediaimg.DetailsDraft{})
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Add(t.Context(), "a.png", bytes.NewReader(pngBytes(t, 4, 4))); err != nil {
		t.Fatal(err)
	}
	if _, err := up.Commit(t.Context()); domain.KindOf(err) != domain.KindUnavailable {
		t.Fatalf("commit: %v, want unavailable", err)
	}
	up.Abort()
	// The commit may have happened for all the service knows: the object stays until the
	// sweep finds it has no row.
	if got := len(f.objects.keys(t)); got != 1 {
		t.Fatalf("%d objects after a commit of unknown outcome, want the 1 kept", got)
	}
	f.env.Clock.Advance(2 * time.Hour)
	if n, err := f.svc.Sweep(t.Context()); err != nil || n != 1 {
		t.Fatalf("sweep removed %d, %v; want the object without a row", n, err)
	}
}

// TestPublicContentRowsComeFromMemoryAndFollowChanges: content requests keep image rows in
// memory while the owner's images stamp is unchanged, and any change made through the service
// (here: making the image private, then deleting it) applies to the very next request.
func TestPublicContentRowsComeFromMemoryAndFollowChanges(t *testing.T) {
	f := newFixture(t, 1<<30)
	owner := f.user()
	imgs, err := f.upload(t, owner, pngBytes(t, 10, 10))
	if err != nil {
		t.Fatal(err)
	}
	id := string(imgs[0].ID())
	public, private := "public", "private"
	if _, err := f.svc.Update(t.Context(), owner, id, mediaimg.DetailsDraft{Visibility: &public}); err != nil {
		t.Fatal(err)
	}
	content := func() error {
		_, obj, err := f.svc.Content(t.Context(), identity.Principal{}, id)
		if err == nil {
			_ = obj.Close()
		}
		return err
	}
	if err := content(); err != nil {
		t.Fatal(err)
	}
	// Behind the service's back (no stamp bump), the row turns private: the next request is
	// still served from memory, which shows the row is kept.
	err = f.env.Store.Do(t.Context(), func(ctx context.Context, tx ports.Scope) error {
		repo := mediafake.Store{}.Images(tx)
		imgs, err := repo.Owned(ctx, owner.UserID, []mediaimg.ID{mediaimg.ID(id)})
		if err != nil {
			return err
		}
		change, err := mediaimg.ParseChange(mediaimg.DetailsDraft{Visibility: &private})
		if err != nil {
			return err
		}
		imgs[0].Update(change)
		return repo.Update(ctx, imgs[0])
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := content(); err != nil {
		t.Fatalf("the kept row was not used: %v", err)
	}
	// Through the service, the change applies at once.
	if _, err := f.svc.Update(t.Context(), owner, id, mediaimg.DetailsDraft{Visibility: &public}); err != nil {
		t.Fatal(err)
	}
	if err := content(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Update(t.Context(), owner, id, mediaimg.DetailsDraft{Visibility: &private}); err != nil {
		t.Fatal(err)
	}
	if err := content(); !errors.Is(err, mediaimg.ErrNotFound) {
		t.Fatalf("content of an image made private = %v, want not found at once", err)
	}
	if _, err := f.svc.Update(t.Context(), owner, id, mediaimg.DetailsDraft{Visibility: &public}); err != nil {
		t.Fatal(err)
	}
	if err := content(); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Delete(t.Context(), owner, id); err != nil {
		t.Fatal(err)
	}
	if err := content(); !errors.Is(err, mediaimg.ErrNotFound) {
		t.Fatalf("content of a deleted image = %v, want not found at once", err)
	}
}

// TestThumbnailJobsGiveWayToUploads: while an upload is in flight, thumbnail jobs take turns
// waiting ThumbnailYield each before making their thumbnail (uploads come first, and the jobs
// still make progress); as soon as no upload is in flight they go on at once. A thumbnail a
// request asks for is never held back.
func TestThumbnailJobsGiveWayToUploads(t *testing.T) {
	const yield = 300 * time.Millisecond
	f := newFixture(t, 1<<30)
	svcWith := func(yield time.Duration) *mediaapp.Service {
		return mediaapp.NewService(f.env.Store, mediafake.Store{}, f.objects, mediafake.Imaging{}, f.env.Jobs, fakes.Stamps{Board: f.board}, f.board,
			f.env.Clock, f.env.IDs, mediaapp.Settings{QuotaBytes: 1 << 30, SweepGrace: time.Hour, ThumbnailYield: yield})
	}
	p := f.user()
	run := func(svc *mediaapp.Service) (int, error) {
		return f.env.RunJobs(t.Context(), map[string]func(context.Context, ports.Job) error{mediaapp.ThumbnailJob: svc.MakeThumbnail})
	}

	// An upload stays open throughout: three jobs pass one per yield, all of them.
	svc := svcWith(yield)
	if _, err := f.upload(t, p, pngBytes(t, 5, 5), pngBytes(t, 6, 6), pngBytes(t, 7, 7)); err != nil {
		t.Fatal(err)
	}
	open, err := svc.BeginUpload(t.Context(), p, mediaimg.DetailsDraft{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if n, err := run(svc); err != nil || n != 3 {
		t.Fatalf("ran %d jobs: %v", n, err)
	}
	if took := time.Since(start); took < 3*yield {
		t.Fatalf("3 thumbnail jobs beside an upload in flight took %v, want at least 3 × %v", took, yield)
	}
	if got := svc.Stats().Thumbnails; got != 3 {
		t.Fatalf("%d thumbnails made, want 3", got)
	}
	// A request's thumbnail is made at once, upload or not.
	imgs, err := f.upload(t, p, pngBytes(t, 9, 9))
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if _, obj, _, err := svc.Thumbnail(t.Context(), p, string(imgs[0].ID())); err != nil {
		t.Fatal(err)
	} else {
		_ = obj.Close()
	}
	if took := time.Since(start); took >= yield {
		t.Fatalf("a requested thumbnail took %v beside an upload in flight", took)
	}
	open.Abort()

	// Once the upload in flight ends, a waiting job goes on without waiting out its turn.
	svc = svcWith(time.Hour)
	if _, err := f.upload(t, p, pngBytes(t, 5, 5), pngBytes(t, 6, 6)); err != nil {
		t.Fatal(err)
	}
	open, err = svc.BeginUpload(t.Context(), p, mediaimg.DetailsDraft{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := run(svc)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if got := svc.Stats().Thumbnails; got != 0 {
		t.Fatalf("%d thumbnails made while an upload was in flight, before the job's turn ended", got)
	}
	if _, err := open.Commit(t.Context()); err == nil {
		t.Fatal("an upload without files committed")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("thumbnail jobs still waiting after the only upload in flight ended")
	}
	if got := svc.Stats().Thumbnails; got != 2 {
		t.Fatalf("%d thumbnails made, want 2", got)
	}
}

// TestWritesOfACallerDeletedMeanwhileAreUnauthenticated: a principal whose account is gone
// by the time its write runs (deleted while the request ran) gets what its next request
// will, unauthenticated, not "no such user".
func TestWritesOfACallerDeletedMeanwhileAreUnauthenticated(t *testing.T) {
	f := newFixture(t, 1<<30)
	ghost := identity.Principal{UserID: identity.UserID(f.env.IDs.NewID()), Role: identity.RoleUser}
	if _, err := f.upload(t, ghost, pngBytes(t, 4, 4)); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Errorf("upload: %v, want unauthenticated", err)
	}
	id := f.env.IDs.NewID()
	public := "public"
	if _, err := f.svc.Update(t.Context(), ghost, id, mediaimg.DetailsDraft{Visibility: &public}); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Errorf("Update: %v, want unauthenticated", err)
	}
	if err := f.svc.Delete(t.Context(), ghost, id); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Errorf("Delete: %v, want unauthenticated", err)
	}
	if err := f.svc.DeleteMany(t.Context(), ghost, []string{id}); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Errorf("DeleteMany: %v, want unauthenticated", err)
	}
}

// TestAnObjectMissingUnderALiveRowIsAFault: content whose object is gone while its image row
// stays (storage lost it, or instances do not share one store) is an error that says so, not
// "no such image", which would hide the fault from operators; once the row is gone too (a
// delete racing the read) it is simply not found.
func TestAnObjectMissingUnderALiveRowIsAFault(t *testing.T) {
	f := newFixture(t, 1<<30)
	owner := f.user()
	imgs, err := f.upload(t, owner, pngBytes(t, 8, 8))
	if err != nil {
		t.Fatal(err)
	}
	img := imgs[0]
	id := string(img.ID())
	if err := f.objects.Delete(t.Context(), img.ContentKey()); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.svc.Content(t.Context(), owner, id)
	if errors.Is(err, mediaimg.ErrNotFound) || !errors.Is(err, ports.ErrObjectNotFound) {
		t.Fatalf("content of a live image whose object is gone: %v, want the missing object reported", err)
	}
	if _, _, _, err = f.svc.Thumbnail(t.Context(), owner, id); errors.Is(err, mediaimg.ErrNotFound) || !errors.Is(err, ports.ErrObjectNotFound) {
		t.Fatalf("thumbnail made from a missing object: %v, want the missing object reported", err)
	}
	if err := f.svc.Delete(t.Context(), owner, id); err != nil {
		t.Fatal(err)
	}
	if _, _, err = f.svc.Content(t.Context(), owner, id); !errors.Is(err, mediaimg.ErrNotFound) {
		t.Fatalf("content of a deleted image: %v, want not found", err)
	}
}

// TestThumbnailOfPixelsThatDoNotDecodeIsAPlaceholder: an image whose header passed the upload
// but whose pixels do not decode gets a placeholder thumbnail, kept like any other: the job
// succeeds (it does not fail for good and leave the thumbnail to fail on every request), the
// image is marked as having its thumbnail, and the placeholders are counted for /metrics.
func TestThumbnailOfPixelsThatDoNotDecodeIsAPlaceholder(t *testing.T) {
	f := newFixture(t, 1<<30)
	p := f.user()
	bad := pngBytes(t, 40, 30)
	idat := bytes.Index(bad, []byte("IDAT"))
	bad[idat+10] ^= 0xff // the chunk's checksum no longer holds; the header is untouched
	imgs, err := f.upload(t, p, bad, pngBytes(t, 20, 20))
	if err != nil {
		t.Fatal(err)
	}
	f.runJobs(t)
	for _, img := range imgs {
		got, err := f.svc.Get(t.Context(), p, string(img.ID()))
		if err != nil || !got.HasThumbnail() {
			t.Fatalf("image %s after its job: %v, thumbnail %v", img.ID(), err, got != nil && got.HasThumbnail())
		}
	}
	if st := f.svc.Stats(); st.Thumbnails != 2 || st.Placeholders != 1 {
		t.Fatalf("%d thumbnails, %d placeholders; want 2 and 1", st.Thumbnails, st.Placeholders)
	}
	_, obj, contentType, err := f.svc.Thumbnail(t.Context(), p, string(imgs[0].ID()))
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	body, err := io.ReadAll(obj)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "image/png" || !strings.HasPrefix(string(body), "placeholder for ") {
		t.Fatalf("thumbnail %q of type %s, want the imaging's placeholder as image/png", body, contentType)
	}
}

// TestThumbnailSharedWithARequestThatLeftIsStillMade: requests for one image's thumbnail
// share the first one's work; that request's client going away must not fail the others.
func TestThumbnailSharedWithARequestThatLeftIsStillMade(t *testing.T) {
	f := newFixture(t, 1<<30)
	svc, gate := f.gatedService(2)
	p := f.user()
	imgs, err := f.upload(t, p, pngBytes(t, 5, 5))
	if err != nil {
		t.Fatal(err)
	}
	id := string(imgs[0].ID())
	leaving, leave := context.WithCancel(t.Context())
	firstDone := thumbnailInBackground(leaving, svc, p, id)
	gate.waitInside(1)
	second := make(chan error, 1)
	go func() {
		_, obj, _, err := svc.Thumbnail(t.Context(), p, id)
		if err == nil {
			_ = obj.Close()
		}
		second <- err
	}()
	time.Sleep(100 * time.Millisecond) // the second request joins the first one's work
	leave()
	gate.release <- struct{}{}
	<-firstDone
	select {
	case err := <-second:
		if err != nil {
			t.Fatalf("the request sharing the work of one that left: %v, want its thumbnail", err)
		}
	case gate.release <- struct{}{}:
		// The second request made the thumbnail again itself; it must still succeed.
		if err := <-second; err != nil {
			t.Fatalf("the request sharing the work of one that left: %v, want its thumbnail", err)
		}
	}
}

// TestThumbnailSharedPastTheFirstDeadlineIsTriedAgain: a request that joined work which ran
// out of the first request's time, with time of its own left, gets its thumbnail.
func TestThumbnailSharedPastTheFirstDeadlineIsTriedAgain(t *testing.T) {
	f := newFixture(t, 1<<30)
	svc, gate := f.gatedService(1)
	p := f.user()
	imgs, err := f.upload(t, p, pngBytes(t, 5, 5), pngBytes(t, 6, 6))
	if err != nil {
		t.Fatal(err)
	}
	holderDone := thumbnailInBackground(t.Context(), svc, p, string(imgs[0].ID())) // holds the only slot until released
	gate.waitInside(1)
	short, cancel := context.WithTimeout(t.Context(), 150*time.Millisecond)
	defer cancel()
	firstDone := make(chan error, 1)
	go func() {
		_, _, _, err := svc.Thumbnail(short, p, string(imgs[1].ID()))
		firstDone <- err
	}()
	second := make(chan error, 1)
	go func() {
		time.Sleep(50 * time.Millisecond) // joins the first request's flight
		_, obj, _, err := svc.Thumbnail(t.Context(), p, string(imgs[1].ID()))
		if err == nil {
			_ = obj.Close()
		}
		second <- err
	}()
	if err := <-firstDone; domain.KindOf(err) != domain.KindOverloaded {
		t.Fatalf("the first request: %v, want overloaded", err)
	}
	gate.release <- struct{}{} // the holder's thumbnail
	<-holderDone
	var err2 error
	select {
	case gate.release <- struct{}{}: // the second request's own attempt
		err2 = <-second
	case err2 = <-second:
	}
	if err2 != nil {
		t.Fatalf("the request that joined work past its first caller's deadline: %v, want its thumbnail", err2)
	}
}

// TestQueryWithoutWordsFindsNothing: a q with text but no word ("%", an emoji) matches no
// image (both lists share page); a blank q is no search.
func TestQueryWithoutWordsFindsNothing(t *testing.T) {
	f := newFixture(t, 1<<30)
	p := f.user()
	if _, err := f.upload(t, p, pngBytes(t, 5, 5)); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string]int{"%": 0, "🎉": 0, "*_": 0, " ": 1, "": 1} {
		page, err := f.svc.List(t.Context(), p, mediaport.ListRequest{Query: q})
		if err != nil || len(page.Images) != want {
			t.Errorf("q=%q: %d images, %v; want %d", q, len(page.Images), err, want)
		}
	}
}
