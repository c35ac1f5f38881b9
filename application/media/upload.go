package media

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/media/image"
	"github.com/acme/postsvc/ports"
	mediaport "github.com/acme/postsvc/ports/media"
)

// abortTimeout bounds removing an aborted upload's objects, which happens after the request
// ended (its context may be done). What it cannot remove, the sweep does.
const abortTimeout = 30 * time.Second

// BeginUpload checks the caller and the details, and refuses at once an owner already at
// their quota, before any file is read.
func (s *Service) BeginUpload(ctx context.Context, p identity.Principal, d image.DetailsDraft) (mediaport.Upload, error) {
	if err := contentOwner(p); err != nil {
		return nil, err
	}
	details, err := image.ParseDetails(d)
	if err != nil {
		return nil, err
	}
	used, err := s.repo().LockOwner(ctx, p.UserID)
	if err != nil {
		return nil, identity.AsCaller(err)
	}
	if used >= s.s.QuotaBytes {
		return nil, image.ErrQuotaExceeded
	}
	s.uploads.begin()
	return &upload{s: s, owner: p.UserID, details: details, used: used}, nil
}

// upload is one request's files: cleaned and stored as they arrive, their rows committed
// together.
type upload struct {
	s       *Service
	owner   identity.UserID
	details image.Details
	used    int64 // the owner's bytes when the upload began
	added   int64
	images  []*image.Image
	// stored holds the keys of the objects stored so far, and of any whose Put failed: a
	// failed Put may still have stored its object (S3 makes an object whole once the server
	// has its bytes, even if the answer never arrives: the request cancelled as the client
	// went away, the connection broken), so Abort removes those keys too.
	stored []string
	done   bool
}

// Add cleans one file and stores it under a new image's key.
func (u *upload) Add(ctx context.Context, filename string, r io.Reader) error {
	if u.done {
		return errors.New("media: upload already committed or aborted")
	}
	id := image.ID(u.s.ids.NewID())
	key := image.ContentKey(u.owner, id)
	hash := sha256.New()
	var info mediaport.ImageInfo
	// The key is the upload's own from now on, stored or not (see stored).
	u.stored = append(u.stored, key)
	size, err := u.s.put(ctx, key, "", func(w writer) error {
		var err error
		info, err = u.s.imaging.Clean(ctx, r, io.MultiWriter(w, hash), mediaport.CleanLimits{MaxPixels: image.MaxPixels})
		return err
	})
	if err != nil {
		err = fileError(len(u.images), image.CleanFilename(filename, ""), err)
		if k := domain.KindOf(err); k == domain.KindUnsupported || k == domain.KindInvalid {
			u.s.stats.refused.Add(1)
		}
		return err
	}
	u.added += size
	if u.used+u.added > u.s.s.QuotaBytes {
		u.s.stats.refused.Add(1)
		return image.ErrQuotaExceeded
	}
	format, err := image.ParseFormat(info.Format)
	if err != nil {
		return fmt.Errorf("media: imaging reported format %q: %w", info.Format, err)
	}
	img, err := image.New(id, u.owner, filename, image.Content{
		Format: format, Bytes: size, Width: info.Width, Height: info.Height, SHA256: hash.Sum(nil),
	}, u.details, u.s.clock.Now())
	if err != nil {
		return err
	}
	u.images = append(u.images, img)
	return nil
}

// Details applies fields that came after a file part to every file of the upload.
func (u *upload) Details(d image.DetailsDraft) error {
	change, err := image.ParseChange(d)
	if err != nil {
		return err
	}
	u.details = change.Apply(u.details)
	for _, img := range u.images {
		img.Update(change)
	}
	return nil
}

// fileError names the file a failure of cleaning concerns.
func fileError(i int, name string, err error) error {
	switch {
	case errors.Is(err, mediaport.ErrUnsupportedFormat):
		return domain.NewError(domain.KindUnsupported, "unsupported_media_type",
			fmt.Sprintf("The file %s is not a PNG, JPEG, GIF or WebP image, or does not decode as one (%v); nothing was stored.", strconv.Quote(name), err))
	case errors.Is(err, mediaport.ErrTooManyPixels):
		// "x.png" is too large to decode: png: 100000×100000 is over 50000000 pixels; the
		// adapter says which limit (pixels, a GIF's frames, a JPEG's scans).
		return domain.Invalid("files["+strconv.Itoa(i)+"]", fmt.Sprintf("%s is %v", strconv.Quote(name), err))
	}
	return storageError(err)
}

// Commit stores every image's row, all or none, checking the quota again under the owner's
// lock (concurrent uploads of one owner queue there). On any failure the objects are removed.
func (u *upload) Commit(ctx context.Context) ([]*image.Image, error) {
	if u.done {
		return nil, errors.New("media: upload already committed or aborted")
	}
	if len(u.images) == 0 {
		u.Abort()
		return nil, domain.Invalid("file", "at least one file part is required")
	}
	err := u.s.uow.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		repo := u.s.store.Images(tx)
		used, err := repo.LockOwner(ctx, u.owner)
		if err != nil {
			return err
		}
		if used+u.added > u.s.s.QuotaBytes {
			return image.ErrQuotaExceeded
		}
		if err := repo.Add(ctx, u.images); err != nil {
			return err
		}
		for _, img := range u.images {
			if _, err := u.s.jobs.Enqueue(ctx, tx, ports.NewJob{Kind: ThumbnailJob, Payload: []byte(img.ID()), MaxAttempts: jobAttempts}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, image.ErrQuotaExceeded) {
			u.s.stats.refused.Add(1)
		}
		if k := domain.KindOf(err); k == domain.KindInternal || k == domain.KindUnavailable {
			// The commit's outcome may be unknown (the connection broke as it was sent): the
			// rows may exist, so their objects stay. If the rows do not exist, the objects
			// have none and the sweep removes them.
			u.finish()
			return nil, err
		}
		u.Abort()
		return nil, identity.AsCaller(err)
	}
	u.finish()
	u.s.stats.uploaded.Add(int64(len(u.images)))
	u.s.stats.uploadedBytes.Add(u.added)
	return u.images, nil
}

// Abort removes the objects stored so far, and whatever a failed Put may have stored.
func (u *upload) Abort() {
	if u.done {
		return
	}
	u.finish()
	ctx, cancel := context.WithTimeout(context.Background(), abortTimeout)
	defer cancel()
	for _, key := range u.stored {
		// What cannot be removed now has no row; the sweep removes it later.
		_ = u.s.objects.Delete(ctx, key)
	}
}

// finish ends the upload: it is no longer in flight (see Service.giveWay).
func (u *upload) finish() {
	if !u.done {
		u.done = true
		u.s.uploads.end()
	}
}

// writer is what a producer of an object's bytes writes to.
type writer = io.Writer

// put stores what produce writes under key, streaming: produce writes into a pipe that the
// store reads. When produce fails, the store's Put is cancelled, so nothing is stored.
func (s *Service) put(ctx context.Context, key, contentType string, produce func(w writer) error) (int64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	pr, pw := io.Pipe()
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := s.objects.Put(ctx, key, pr, -1, contentType)
		// Unblock the producer if the store stopped reading.
		_ = pr.CloseWithError(errStoreStopped(err))
		done <- result{n, err}
	}()
	perr := produce(pw)
	if perr != nil {
		cancel(perr)
		_ = pw.CloseWithError(perr)
	} else {
		_ = pw.Close()
	}
	res := <-done
	switch {
	case perr != nil && res.err != nil && errors.Is(perr, res.err):
		// The store failed (a full disk, a broken connection) and stopped reading, and the
		// producer's write got its error back through the pipe: the store's failure is the
		// cause, a dependency's (503), not the producer's own.
		return 0, storageError(res.err)
	case perr != nil:
		if res.err == nil {
			// The store finished before it saw the failure: remove what it stored.
			_ = s.objects.Delete(context.WithoutCancel(ctx), key)
		}
		return 0, perr
	case res.err != nil:
		return 0, storageError(res.err)
	}
	return res.n, nil
}

func errStoreStopped(err error) error {
	if err == nil {
		return errors.New("media: object store stopped reading")
	}
	return err
}

// Sweep removes stored objects that no image refers to and that are older than the grace
// period (younger ones may belong to an upload about to commit). It runs at start, then
// periodically, and from the "media gc" command; several at once, on several instances, are
// harmless. It returns how many objects it removed.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	cutoff := s.clock.Now().Add(-s.s.SweepGrace)
	type candidate struct {
		key string
		id  image.ID
	}
	var batch []candidate
	removed := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		ids := make([]image.ID, len(batch))
		for i, c := range batch {
			ids[i] = c.id
		}
		existing, err := s.repo().Existing(ctx, ids)
		if err != nil {
			return err
		}
		for _, c := range batch {
			if existing[c.id] {
				continue
			}
			if err := s.objects.Delete(ctx, c.key); err != nil {
				return storageError(err)
			}
			removed++
			s.stats.swept.Add(1)
		}
		batch = batch[:0]
		return nil
	}
	var flushErr error
	err := s.objects.List(ctx, image.ObjectPrefix, func(o ports.ObjectInfo) error {
		if _, id, ok := image.ParseKey(o.Key); ok && o.Modified.Before(cutoff) {
			batch = append(batch, candidate{key: o.Key, id: id})
		}
		if len(batch) < sweepBatch {
			return nil
		}
		flushErr = flush()
		return flushErr
	})
	switch {
	case flushErr != nil:
		return removed, flushErr
	case err != nil:
		return removed, storageError(err)
	}
	if err := flush(); err != nil {
		return removed, err
	}
	// What a killed upload left half written is no object and is never listed: the S3
	// store's unfinished multipart uploads (a file over 8 MiB), whose parts take space until
	// aborted, and the filesystem store's temporaries. It is removed past the same grace.
	if w, ok := s.objects.(ports.PartialWriteSweeper); ok {
		if _, err := w.Sweep(ctx, s.s.SweepGrace); err != nil {
			return removed, storageError(err)
		}
	}
	return removed, nil
}

// sweepBatch is how many objects the sweep checks against the database at once.
const sweepBatch = 500
