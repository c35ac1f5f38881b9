// Package media is the image repository use case: users upload images, which are cleaned of
// their metadata and kept in object storage; they list, search, describe, publish and delete
// them; anyone reads public images.
//
// The database row is the truth and storage follows it: an upload stores its objects first
// and commits its rows only once every object is whole, so a row never names a missing
// object; a deletion commits first and removes the objects afterwards through a durable job;
// objects that no row names (an upload that failed or died half way) are swept.
package media

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acme/postsvc/application/flight"
	"github.com/acme/postsvc/application/paging"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/media/image"
	"github.com/acme/postsvc/ports"
	mediaport "github.com/acme/postsvc/ports/media"
)

// The context's background jobs.
const (
	// ThumbnailJob makes and stores the thumbnail of one image; its payload is the image id.
	ThumbnailJob = "media.thumbnail"
	// DeleteObjectsJob removes the objects of deleted images once the deletion has
	// committed; its payload is their keys, one per line.
	DeleteObjectsJob = "media.delete_objects"
)

// Settings bound what users store.
type Settings struct {
	// QuotaBytes is the total size of the images one user may store.
	QuotaBytes int64
	// SweepGrace is how old an object without a row must be before the sweep removes it:
	// longer than any upload takes between storing its first object and committing.
	SweepGrace time.Duration
	// ThumbnailSlots bounds the thumbnails made at once, by requests and jobs together:
	// decoding a 50-megapixel image takes a few hundred MB. Default 2.
	ThumbnailSlots int
	// ThumbnailYield is how long a thumbnail job waits for a moment without uploads in
	// flight before its thumbnail is made anyway. Uploads come first: while they keep
	// arriving, the jobs take turns at this wait and pass one per ThumbnailYield, and the
	// backlog is made once the uploads pause. A thumbnail a request asks for is made at once.
	// Default 1s.
	ThumbnailYield time.Duration
}

// maxBulkIDs bounds the ids of one bulk delete.
const maxBulkIDs = 100

// maxQueryBytes bounds a search query.
const maxQueryBytes = 1000

// jobAttempts is how many times the context's jobs run: storage outages can last a while,
// and an object left behind is only garbage, which the sweep removes anyway.
const jobAttempts = 20

// Service implements mediaport.Service, the context's job handlers and ports.UserDataOwner.
type Service struct {
	uow     ports.UnitOfWork
	store   mediaport.Store
	objects ports.ObjectStore
	imaging mediaport.Imaging
	jobs    ports.JobQueue
	stamps  ports.Stamps
	// rows keeps the rows that content requests read in memory (see rows).
	rows   rows
	clock  ports.Clock
	ids    ports.IDGenerator
	s      Settings
	thumbs flight.Group[image.ID, struct{}]
	// slots bounds concurrent thumbnail decodes (Settings.ThumbnailSlots).
	slots chan struct{}
	// opening counts the slot holders waiting for the object store to open an image: while
	// one does, a thumbnail not made in time is put down to the store (see thumbnailLate).
	opening atomic.Int64
	// uploads counts the uploads in flight; yieldTurn lets one thumbnail job at a time wait
	// for them (Settings.ThumbnailYield).
	uploads   *inFlight
	yieldTurn chan struct{}
	stats     counters
}

// counters are what the service counts since start, for metrics.
type counters struct {
	uploaded, uploadedBytes, refused, swept, thumbnails, placeholders atomic.Int64
}

// Stats is a snapshot of the service's counters since start.
type Stats struct {
	// Uploaded and UploadedBytes count the images committed by uploads and their stored
	// bytes; Refused counts upload requests refused for their content (format, size,
	// pixels, quota).
	Uploaded, UploadedBytes, Refused int64
	// Swept counts objects without an image that the sweep removed; Thumbnails the
	// thumbnails made, and Placeholders those of them that are placeholders, for images
	// whose pixel data did not decode (see mediaport.Imaging.Thumbnail).
	Swept, Thumbnails, Placeholders int64
}

// Stats returns the counters since start.
func (s *Service) Stats() Stats {
	return Stats{
		Uploaded: s.stats.uploaded.Load(), UploadedBytes: s.stats.uploadedBytes.Load(), Refused: s.stats.refused.Load(),
		Swept: s.stats.swept.Load(), Thumbnails: s.stats.thumbnails.Load(), Placeholders: s.stats.placeholders.Load(),
	}
}

var (
	_ mediaport.Service   = (*Service)(nil)
	_ ports.UserDataOwner = (*Service)(nil)
)

// NewService builds the media use case.
func NewService(uow ports.UnitOfWork, store mediaport.Store, objects ports.ObjectStore, imaging mediaport.Imaging,
	jobs ports.JobQueue, stamps ports.Stamps, board ports.StampBoard, clock ports.Clock, ids ports.IDGenerator, s Settings,
) *Service {
	if s.ThumbnailSlots <= 0 {
		s.ThumbnailSlots = 2
	}
	if s.ThumbnailYield <= 0 {
		s.ThumbnailYield = time.Second
	}
	return &Service{
		uow: uow, store: store, objects: objects, imaging: imaging, jobs: jobs, stamps: stamps, rows: rows{board: board},
		clock: clock, ids: ids, s: s,
		slots: make(chan struct{}, s.ThumbnailSlots), uploads: newInFlight(), yieldTurn: make(chan struct{}, 1),
	}
}

// contentOwner refuses anonymous callers and admins: only users hold images.
func contentOwner(p identity.Principal) error {
	if p.UserID == "" {
		return domain.ErrUnauthenticated
	}
	return identity.RequireContentOwner(p)
}

// reader refuses admins, who hold no content and read none; anonymous callers may read
// public images.
func reader(p identity.Principal) error {
	if p.UserID == "" {
		return nil
	}
	return identity.RequireContentOwner(p)
}

func (s *Service) repo() mediaport.Repository { return s.store.Images(s.uow.Pool()) }

// List returns a page of the caller's images, newest first, optionally searched and
// filtered by visibility.
func (s *Service) List(ctx context.Context, p identity.Principal, req mediaport.ListRequest) (mediaport.Page, error) {
	if err := contentOwner(p); err != nil {
		return mediaport.Page{}, err
	}
	q, err := s.listQuery(req, true)
	if err != nil {
		return mediaport.Page{}, err
	}
	q.Owner = p.UserID
	return s.page(ctx, q)
}

// ListPublic returns a page of everyone's public images, newest first.
func (s *Service) ListPublic(ctx context.Context, p identity.Principal, req mediaport.ListRequest) (mediaport.Page, error) {
	if err := reader(p); err != nil {
		return mediaport.Page{}, err
	}
	q, err := s.listQuery(req, false)
	if err != nil {
		return mediaport.Page{}, err
	}
	q.Visibility = image.Public
	return s.page(ctx, q)
}

func (s *Service) listQuery(req mediaport.ListRequest, visibility bool) (mediaport.ListQuery, error) {
	var v domain.Validator
	limit, err := paging.Limit(req.Limit)
	v.Check(err)
	before, err := paging.Decode(req.Cursor)
	v.Check(err)
	q := mediaport.ListQuery{Limit: limit, Before: image.ID(before)}
	if visibility && req.Visibility != "" {
		vis, err := image.ParseVisibility("visibility", req.Visibility)
		v.Check(err)
		q.Visibility = vis
	}
	if len(req.Query) > maxQueryBytes {
		v.Check(domain.Invalid("q", fmt.Sprintf("must be at most %d bytes", maxQueryBytes)))
	} else {
		search, ok := image.ParseQuery(req.Query)
		if !ok {
			v.Check(domain.Invalid("q", fmt.Sprintf("must have at most %d distinct words", image.MaxQueryWords)))
		}
		q.Search = search
	}
	return q, v.Err()
}

func (s *Service) page(ctx context.Context, q mediaport.ListQuery) (mediaport.Page, error) {
	if q.Search.Nothing {
		return mediaport.Page{Images: []*image.Image{}}, nil
	}
	list, err := s.repo().List(ctx, q)
	if err != nil {
		return mediaport.Page{}, err
	}
	page := mediaport.Page{Images: list.Images}
	if list.More && len(list.Images) > 0 {
		page.NextCursor = paging.Encode(string(list.Images[len(list.Images)-1].ID()))
	}
	return page, nil
}

// Get returns an image the caller may see.
func (s *Service) Get(ctx context.Context, p identity.Principal, id string) (*image.Image, error) {
	if err := reader(p); err != nil {
		return nil, err
	}
	if !image.PlausibleID(id) {
		return nil, image.ErrNotFound
	}
	img, err := s.repo().Get(ctx, image.ID(id))
	if err != nil {
		return nil, err
	}
	if !img.VisibleTo(p.UserID) {
		return nil, image.ErrNotFound
	}
	return img, nil
}

// Content opens the stored bytes of an image the caller may see. Its row comes from memory
// while the board vouches for it (see rows): this is the path of public images.
func (s *Service) Content(ctx context.Context, p identity.Principal, id string) (*image.Image, ports.Object, error) {
	if err := reader(p); err != nil {
		return nil, nil, err
	}
	if !image.PlausibleID(id) {
		return nil, nil, image.ErrNotFound
	}
	img, err := s.rows.get(ctx, image.ID(id), func(ctx context.Context) (*image.Image, error) {
		return s.repo().Get(ctx, image.ID(id))
	})
	if err != nil {
		return nil, nil, err
	}
	if !img.VisibleTo(p.UserID) {
		return nil, nil, image.ErrNotFound
	}
	obj, err := s.objects.Open(ctx, img.ContentKey())
	if errors.Is(err, ports.ErrObjectNotFound) {
		return nil, nil, s.objectMissing(ctx, img, img.ContentKey())
	}
	if err != nil {
		return nil, nil, storageError(err)
	}
	return img, obj, nil
}

// objectMissing is the error for an image whose object key was not in storage. Usually the
// image was deleted between the read of its row and now, and the row is gone too: not found.
// If the row is still there, the store has lost the object or is not the one the image was
// stored in (instances with filesystem storage in folders of their own): a fault, reported as
// an internal error, which the HTTP kernel logs, never as "no such image".
func (s *Service) objectMissing(ctx context.Context, img *image.Image, key string) error {
	_, err := s.repo().Get(ctx, img.ID())
	switch {
	case errors.Is(err, image.ErrNotFound):
		return image.ErrNotFound
	case err != nil:
		return err
	}
	return fmt.Errorf("media: image %s has its row but its object %s is not in storage "+
		"(lost, or every instance does not share one store): %w", img.ID(), key, ports.ErrObjectNotFound)
}

// recordThumbnail records that img's thumbnail, just stored, exists. An image deleted while
// its thumbnail was made (or whose owner was) may have had its objects removed already,
// before the thumbnail was stored, and nothing else would remove it but the sweep: so when
// the row is gone the thumbnail is removed here, and the image is not found. The row's update
// is what decides: a deletion committed before it leaves the thumbnail to this, one committed
// after it removes the thumbnail itself.
func (s *Service) recordThumbnail(ctx context.Context, img *image.Image) error {
	err := s.repo().MarkThumbnail(ctx, img.ID())
	if !errors.Is(err, image.ErrNotFound) {
		return err
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	// What cannot be removed now has no image; the sweep removes it later.
	_ = s.objects.Delete(dctx, img.ThumbnailKey())
	return image.ErrNotFound
}

// ThumbnailType is the content type of an image's thumbnail: JPEG for JPEG images, PNG for
// the others (whose transparency JPEG cannot hold).
func ThumbnailType(f image.Format) string {
	if f == image.FormatJPEG {
		return "image/jpeg"
	}
	return "image/png"
}

// Thumbnail opens the thumbnail of an image the caller may see, making it now if the
// background job has not yet.
func (s *Service) Thumbnail(ctx context.Context, p identity.Principal, id string) (*image.Image, ports.Object, string, error) {
	img, err := s.Get(ctx, p, id)
	if err != nil {
		return nil, nil, "", err
	}
	if !img.HasThumbnail() {
		if err := s.ensureThumbnail(ctx, img); err != nil {
			return nil, nil, "", err
		}
	}
	obj, err := s.objects.Open(ctx, img.ThumbnailKey())
	if errors.Is(err, ports.ErrObjectNotFound) {
		// Marked made but missing (storage lost it): make it again.
		if err := s.makeThumbnail(ctx, img); err != nil {
			return nil, nil, "", err
		}
		obj, err = s.objects.Open(ctx, img.ThumbnailKey())
	}
	if errors.Is(err, ports.ErrObjectNotFound) {
		return nil, nil, "", s.objectMissing(ctx, img, img.ThumbnailKey())
	}
	if err != nil {
		return nil, nil, "", storageError(err)
	}
	return img, obj, ThumbnailType(img.Content().Format), nil
}

// ensureThumbnail makes img's thumbnail once however many requests ask for it at once. The
// work is shared (flight.Group): the first caller's client going away does not fail the
// callers that joined it.
func (s *Service) ensureThumbnail(ctx context.Context, img *image.Image) error {
	_, _, err := s.thumbs.Do(ctx, img.ID(), func(wctx context.Context) (struct{}, error) {
		if fresh, err := s.repo().Get(wctx, img.ID()); err == nil && fresh.HasThumbnail() {
			// Made by a flight that ended after the caller read the image (the job and a
			// request, one after the other): made once and kept.
			return struct{}{}, nil
		}
		return struct{}{}, s.makeThumbnail(wctx, img)
	})
	if errors.Is(err, flight.ErrStoppedWaiting) {
		// Not made within the caller's deadline; the work goes on for whoever asks next.
		return s.thumbnailLate(ctx, "the thumbnail was not made in time")
	}
	return err
}

// thumbnailLate is the error of a caller whose thumbnail was not made within its deadline:
// the object store is slow (503 unavailable) while a slot holder is waiting for it to open an
// image, as every one does when the store stalls; otherwise the slots are busy with work and
// the service sheds this request (503 overloaded, retry shortly). An outside probe that
// stalled the S3 server got overloaded, which clients and alerts acting on the code misread.
func (s *Service) thumbnailLate(ctx context.Context, what string) error {
	if s.opening.Load() > 0 {
		return fmt.Errorf("%w: %s: the object store is slow to open the images being thumbnailed: %w", domain.ErrUnavailable, what, ctx.Err())
	}
	return fmt.Errorf("%w: %s: %w", domain.ErrOverloaded, what, ctx.Err())
}

// makeThumbnail makes, stores and records img's thumbnail. It is idempotent: making it twice
// stores the same bytes twice.
func (s *Service) makeThumbnail(ctx context.Context, img *image.Image) error {
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	case <-ctx.Done():
		// Every slot stayed busy until the caller's deadline.
		return s.thumbnailLate(ctx, "no thumbnail slot came free in time")
	}
	s.opening.Add(1)
	src, err := s.objects.Open(ctx, img.ContentKey())
	s.opening.Add(-1)
	if errors.Is(err, ports.ErrObjectNotFound) {
		return s.objectMissing(ctx, img, img.ContentKey())
	}
	if err != nil {
		return storageError(err)
	}
	defer func() { _ = src.Close() }()
	var made mediaport.Thumbnail
	_, err = s.put(ctx, img.ThumbnailKey(), ThumbnailType(img.Content().Format), func(w writer) error {
		made, err = s.imaging.Thumbnail(ctx, src, w, image.ThumbnailSide)
		return err
	})
	if errors.Is(err, ports.ErrObjectNotFound) {
		// The image's object went while it was read: an S3 object deleted after it was
		// opened ends its reads, where an open file stays readable. Usually the image was
		// deleted meanwhile (not found); with its row still there, a fault.
		return s.objectMissing(ctx, img, img.ContentKey())
	}
	if err != nil {
		return err
	}
	s.stats.thumbnails.Add(1)
	if made.Placeholder {
		// Kept like any thumbnail: the pixels will not decode on a second try either.
		s.stats.placeholders.Add(1)
	}
	return s.recordThumbnail(ctx, img)
}

// giveWay waits, before a thumbnail job's work, until no upload is in flight or
// Settings.ThumbnailYield has passed. Jobs take turns at the wait, so while uploads keep
// coming they pass one per ThumbnailYield instead of taking every thumbnail slot's share of
// the cores from the uploads (with 2 slots, 30 % of the server's CPU under 64 concurrent
// 1 MiB uploads).
func (s *Service) giveWay(ctx context.Context) error {
	select {
	case s.yieldTurn <- struct{}{}:
		defer func() { <-s.yieldTurn }()
	case <-ctx.Done():
		return ctx.Err()
	}
	idle := s.uploads.idle()
	select {
	case <-idle:
		return nil
	default:
	}
	t := time.NewTimer(s.s.ThumbnailYield)
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// inFlight counts what is in progress and says when nothing is.
type inFlight struct {
	mu   sync.Mutex
	n    int
	none chan struct{} // closed while n is 0
}

func newInFlight() *inFlight {
	none := make(chan struct{})
	close(none)
	return &inFlight{none: none}
}

func (f *inFlight) begin() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		f.none = make(chan struct{})
	}
	f.n++
}

func (f *inFlight) end() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n--
	if f.n == 0 {
		close(f.none)
	}
}

// idle returns a channel closed once nothing is in progress (already closed if nothing is).
func (f *inFlight) idle() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.none
}

// MakeThumbnail runs the ThumbnailJob.
func (s *Service) MakeThumbnail(ctx context.Context, job ports.Job) error {
	id := string(job.Payload)
	if !image.PlausibleID(id) {
		return fmt.Errorf("%w: media: thumbnail job payload %q is not an image id", ports.ErrPermanentJob, job.Payload)
	}
	img, err := s.repo().Get(ctx, image.ID(id))
	switch {
	case errors.Is(err, image.ErrNotFound):
		return nil // deleted meanwhile
	case err != nil:
		return err
	case img.HasThumbnail():
		return nil
	}
	if err := s.giveWay(ctx); err != nil {
		return err
	}
	err = s.ensureThumbnail(ctx, img)
	if errors.Is(err, image.ErrNotFound) {
		return nil
	}
	if errors.Is(err, mediaport.ErrUnsupportedFormat) || errors.Is(err, mediaport.ErrTooManyPixels) {
		// The stored file no longer passes the checks it passed at upload (a pixel data
		// problem gets a placeholder instead): retrying cannot help.
		return fmt.Errorf("%w: media: image %s: %w", ports.ErrPermanentJob, id, err)
	}
	return err
}

// Update changes the details of one of the caller's images.
func (s *Service) Update(ctx context.Context, p identity.Principal, id string, d image.DetailsDraft) (*image.Image, error) {
	if err := contentOwner(p); err != nil {
		return nil, err
	}
	change, err := image.ParseChange(d)
	if err != nil {
		return nil, err
	}
	if !image.PlausibleID(id) {
		return nil, image.ErrNotFound
	}
	var out *image.Image
	err = s.uow.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		if !change.Empty() {
			if err := bump(ctx, s.stamps, tx, p.UserID); err != nil {
				return err
			}
		}
		repo := s.store.Images(tx)
		imgs, err := repo.Owned(ctx, p.UserID, []image.ID{image.ID(id)})
		if err != nil {
			return err
		}
		if len(imgs) == 0 {
			return image.ErrNotFound
		}
		img := imgs[0]
		if change.Empty() {
			out = img
			return nil
		}
		img.Update(change)
		out = img
		return repo.Update(ctx, img)
	})
	return out, identity.AsCaller(err)
}

// Delete deletes one of the caller's images.
func (s *Service) Delete(ctx context.Context, p identity.Principal, id string) error {
	if err := contentOwner(p); err != nil {
		return err
	}
	if !image.PlausibleID(id) {
		return image.ErrNotFound
	}
	return s.deleteOwned(ctx, p.UserID, []image.ID{image.ID(id)}, false)
}

// DeleteMany deletes the caller's images with ids, all or none.
func (s *Service) DeleteMany(ctx context.Context, p identity.Principal, raw []string) error {
	if err := contentOwner(p); err != nil {
		return err
	}
	if len(raw) < 1 || len(raw) > maxBulkIDs {
		return domain.Invalid("ids", fmt.Sprintf("must hold 1 to %d ids, got %d", maxBulkIDs, len(raw)))
	}
	ids := make([]image.ID, 0, len(raw))
	var implausible []string
	seen := map[string]bool{}
	for _, id := range raw {
		if seen[id] {
			continue
		}
		seen[id] = true
		if !image.PlausibleID(id) {
			implausible = append(implausible, id)
			continue
		}
		ids = append(ids, image.ID(id))
	}
	if len(implausible) > 0 {
		return notFound(implausible)
	}
	return s.deleteOwned(ctx, p.UserID, ids, true)
}

// notFound is the 404 of a bulk delete, naming the ids that are not the caller's.
func notFound(ids []string) error {
	msg := fmt.Sprintf("%d of the ids are not images of yours (listed under \"ids\"); nothing was deleted.", len(ids))
	if len(ids) == 1 {
		msg = "1 of the ids is not an image of yours (listed under \"ids\"); nothing was deleted."
	}
	return domain.WithIDs(domain.NewError(domain.KindNotFound, image.ErrNotFound.Code(), msg), ids)
}

// deleteOwned deletes owner's images with ids in one unit of work, with the job that removes
// their objects after the commit. When any id is not the owner's nothing is deleted: a bulk
// delete lists those ids, a single delete is simply not found.
func (s *Service) deleteOwned(ctx context.Context, owner identity.UserID, ids []image.ID, bulk bool) error {
	err := s.uow.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		if err := bump(ctx, s.stamps, tx, owner); err != nil {
			return err
		}
		repo := s.store.Images(tx)
		owned, err := repo.Owned(ctx, owner, ids)
		if err != nil {
			return err
		}
		if missing := missingIDs(ids, owned); len(missing) > 0 {
			if !bulk {
				return image.ErrNotFound
			}
			return notFound(missing)
		}
		n, err := repo.Delete(ctx, owner, ids)
		if err != nil {
			return err
		}
		if n != len(ids) {
			// Another request deleted some of them after they were read: this one deletes
			// nothing, and a retry reports them.
			return image.ErrNotFound
		}
		keys := make([]string, 0, 2*len(owned))
		for _, img := range owned {
			keys = append(keys, img.ContentKey(), img.ThumbnailKey())
		}
		_, err = s.jobs.Enqueue(ctx, tx, ports.NewJob{Kind: DeleteObjectsJob, Payload: []byte(strings.Join(keys, "\n")), MaxAttempts: jobAttempts})
		return err
	})
	return identity.AsCaller(err)
}

func missingIDs(ids []image.ID, owned []*image.Image) []string {
	have := make(map[image.ID]bool, len(owned))
	for _, img := range owned {
		have[img.ID()] = true
	}
	var missing []string
	for _, id := range ids {
		if !have[id] {
			missing = append(missing, string(id))
		}
	}
	return missing
}

// DeleteObjects runs the DeleteObjectsJob. Objects already gone are no error, so a run
// repeated after a crash finishes the work.
func (s *Service) DeleteObjects(ctx context.Context, job ports.Job) error {
	for key := range strings.SplitSeq(string(job.Payload), "\n") {
		if _, _, ok := image.ParseKey(key); !ok {
			return fmt.Errorf("%w: media: delete job names %q, which is not an image object", ports.ErrPermanentJob, key)
		}
		if err := s.objects.Delete(ctx, key); err != nil {
			return storageError(err)
		}
	}
	return nil
}

// DeleteUserData deletes a deleted user's images in the deleting transaction
// (ports.UserDataOwner); CleanUpUser removes their objects after the commit.
func (s *Service) DeleteUserData(ctx context.Context, tx ports.Scope, user identity.UserID) error {
	if err := bump(ctx, s.stamps, tx, user); err != nil {
		return err
	}
	return s.store.Images(tx).DeleteByOwner(ctx, user)
}

// CleanUpUser removes every object of a deleted user: all of them live under the user's
// prefix. It runs in the user-cleanup job, after the deletion committed, and may run again.
func (s *Service) CleanUpUser(ctx context.Context, user identity.UserID) error {
	var keys []string
	err := s.objects.List(ctx, image.OwnerPrefix(user), func(o ports.ObjectInfo) error {
		keys = append(keys, o.Key)
		return nil
	})
	if err != nil {
		return fmt.Errorf("media: list the objects of deleted user %s: %w", user, storageError(err))
	}
	for _, key := range keys {
		if err := s.objects.Delete(ctx, key); err != nil {
			return fmt.Errorf("media: delete %s of deleted user %s: %w", key, user, storageError(err))
		}
	}
	return nil
}

// storageError marks a failure of object storage as the unavailability of a dependency
// (503), unless it already describes itself.
func storageError(err error) error {
	var de domain.Error
	if err == nil || errors.As(err, &de) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: object storage: %w", domain.ErrUnavailable, err)
}
