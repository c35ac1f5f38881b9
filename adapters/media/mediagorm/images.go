package mediagorm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"gorm.io/gorm"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/media/image"
	mediaport "github.com/acme/postsvc/ports/media"
)

// Bounds of one statement: Add inserts at most insertBatch rows a statement (an upload holds
// at most 50 files), and the sweep's Existing asks about at most lookupBatch ids a statement.
const (
	insertBatch = 100
	lookupBatch = 500
)

// repo implements media.Repository (ports/media) on one scope: the pool (pool set) or a
// transaction.
type repo struct {
	db   *gorm.DB
	pool bool
}

var _ mediaport.Repository = repo{}

// LockOwner locks the owner's users row, the row every quota-checked write of the owner locks
// first, so concurrent uploads of one owner queue there until the first one's transaction
// ends; then it sums the bytes of the owner's images. SQLite needs no row lock: its write
// transactions begin IMMEDIATE and run one at a time.
//
// On MySQL the sum is a consistent read, and InnoDB's REPEATABLE READ fixes a transaction's
// snapshot at its first consistent read. LockOwner must therefore come before any other read
// of the transaction (as it does in the upload's commit): the sum is then the snapshot's
// first read, taken once the lock is granted, so it sees every upload committed before. A
// locking read of the sum would not depend on that, but it would take gap locks on the owner
// index that deadlock the first uploads of two owners whose ids are neighbours.
//
// On the pool's scope there is no transaction to hold a lock: the owner's row and the sum are
// then merely read, in one statement, so an upload beginning does not wait behind another of
// the owner's uploads committing (which holds the row's lock).
func (r repo) LockOwner(ctx context.Context, owner identity.UserID) (int64, error) {
	db := r.db.WithContext(ctx)
	if r.pool {
		var used []int64
		err := db.Raw("SELECT (SELECT COALESCE(SUM(bytes), 0) FROM images WHERE owner_id = u.id) FROM users u WHERE u.id = ?",
			string(owner)).Scan(&used).Error
		if err != nil {
			return 0, gormstore.MapErr(err)
		}
		if len(used) == 0 {
			return 0, fmt.Errorf("mediagorm: quota of %s: %w", owner, identity.ErrUnknownUser)
		}
		return used[0], nil
	}
	lock := "SELECT id FROM users WHERE id = ?"
	if gormstore.IsMySQL(db) {
		lock += " FOR UPDATE"
	}
	var ids []string
	if err := db.Raw(lock, string(owner)).Scan(&ids).Error; err != nil {
		return 0, gormstore.MapErr(err)
	}
	if len(ids) == 0 {
		return 0, fmt.Errorf("mediagorm: quota of %s: %w", owner, identity.ErrUnknownUser)
	}
	var used int64
	err := db.Raw("SELECT COALESCE(SUM(bytes), 0) FROM images WHERE owner_id = ?", string(owner)).Scan(&used).Error
	if err != nil {
		return 0, gormstore.MapErr(err)
	}
	return used, nil
}

// Add inserts the images in multi-row INSERTs of at most insertBatch rows. An upload holds at
// most 50 images, so it is one statement, atomic on its own; more images on the pool's scope
// are inserted in a transaction of their own, so Add stays all or nothing.
func (r repo) Add(ctx context.Context, images []*image.Image) error {
	if len(images) == 0 {
		return nil
	}
	owner := images[0].Owner()
	rows := make([]imageRow, len(images))
	for i, img := range images {
		if img.Owner() != owner {
			return fmt.Errorf("mediagorm: one Add holds images of %s and of %s", owner, img.Owner())
		}
		row, err := toRow(img)
		if err != nil {
			return err
		}
		rows[i] = row
	}
	insert := func(db *gorm.DB) error { return db.CreateInBatches(&rows, insertBatch).Error }
	var err error
	if r.pool && len(rows) > insertBatch {
		err = r.db.WithContext(ctx).Transaction(insert)
	} else {
		err = insert(r.db.WithContext(ctx))
	}
	switch {
	case errors.Is(err, gorm.ErrForeignKeyViolated):
		// The owner was deleted between authentication and this write.
		return fmt.Errorf("mediagorm: images of %s: %w", owner, identity.ErrUnknownUser)
	case errors.Is(err, gorm.ErrDuplicatedKey):
		// Ids are fresh UUIDv7s: a duplicate is a bug, not a request's outcome.
		return fmt.Errorf("mediagorm: images of %s: duplicate id: %w", owner, err)
	}
	return gormstore.MapErr(err)
}

func (r repo) Get(ctx context.Context, id image.ID) (*image.Image, error) {
	// Anything else (from a URL) cannot name an image.
	if !image.PlausibleID(string(id)) {
		return nil, image.ErrNotFound
	}
	var row imageRow
	err := r.db.WithContext(ctx).Select(columns).Where("id = ?", string(id)).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, image.ErrNotFound
	}
	if err != nil {
		return nil, gormstore.MapErr(err)
	}
	return row.toDomain()
}

func (r repo) Owned(ctx context.Context, owner identity.UserID, ids []image.ID) ([]*image.Image, error) {
	out := []*image.Image{}
	for chunk := range slices.Chunk(plausible(ids), lookupBatch) {
		var rows []imageRow
		err := r.db.WithContext(ctx).Select(columns).
			Where("owner_id = ? AND id IN ?", string(owner), chunk).Find(&rows).Error
		if err != nil {
			return nil, gormstore.MapErr(err)
		}
		imgs, err := toDomain(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, imgs...)
	}
	return out, nil
}

// List reads one more row than the limit, which tells whether another page follows without a
// count query. An owner's page runs on (owner_id, id, ...), the public listing on
// (visibility, id); a search adds the dialect's full-text condition (searchCondition).
//
// On MySQL a search does not see the rows that the current transaction added or changed:
// InnoDB updates its FULLTEXT index at commit.
func (r repo) List(ctx context.Context, q mediaport.ListQuery) (mediaport.List, error) {
	out := mediaport.List{Images: []*image.Image{}}
	if q.Limit <= 0 {
		return out, nil
	}
	db := r.db.WithContext(ctx)
	tx := db.Model(&imageRow{}).Select(columns)
	switch {
	case q.Owner != "":
		tx = tx.Where("owner_id = ?", string(q.Owner))
		if q.Visibility != "" {
			tx = tx.Where("visibility = ?", string(q.Visibility))
		}
	case q.Visibility != "" && q.Visibility != image.Public:
		// Everyone's images are listed only when public.
		return out, nil
	default:
		tx = tx.Where("visibility = ?", string(image.Public))
	}
	if q.Before != "" {
		tx = tx.Where("id < ?", string(q.Before))
	}
	if len(q.Search.Tokens) > 0 {
		cond, arg, ok := searchCondition(db, q.Search.Tokens)
		if !ok {
			return out, nil
		}
		tx = tx.Where(cond, arg)
	}
	var rows []imageRow
	if err := tx.Order("id DESC").Limit(q.Limit + 1).Find(&rows).Error; err != nil {
		return mediaport.List{}, gormstore.MapErr(err)
	}
	if len(rows) > q.Limit {
		rows, out.More = rows[:q.Limit], true
	}
	imgs, err := toDomain(rows)
	if err != nil {
		return mediaport.List{}, err
	}
	out.Images = imgs
	return out, nil
}

// searchCondition is the condition that keeps the rows whose search document holds every
// token. MySQL: a boolean-mode MATCH requiring each token ("+w6f78 +w636174"). SQLite: the
// rows whose doc_id the FTS5 index finds for every token, each quoted ("w6f78" AND
// "w636174"). Tokens are [a-z0-9] (image.Token), which neither query language reads as an
// operator, and which the quotes would keep as one term anyway; a token with anything else
// cannot be in any document, so it reports false: nothing matches.
func searchCondition(db *gorm.DB, tokens []string) (string, string, bool) {
	for _, t := range tokens {
		if t == "" || strings.Trim(t, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
			return "", "", false
		}
	}
	if gormstore.IsMySQL(db) {
		return "MATCH (search_doc) AGAINST (? IN BOOLEAN MODE)", "+" + strings.Join(tokens, " +"), true
	}
	return "doc_id IN (SELECT rowid FROM images_fts WHERE images_fts MATCH ?)",
		`"` + strings.Join(tokens, `" AND "`) + `"`, true
}

// Update writes the details and the search document made of them; the image's owner scopes
// the row, so an image cannot move between owners.
func (r repo) Update(ctx context.Context, img *image.Image) error {
	d := img.Details()
	tags, err := encodeTags(d.Tags)
	if err != nil {
		return err
	}
	res := r.db.WithContext(ctx).Model(&imageRow{}).
		Where("id = ? AND owner_id = ?", string(img.ID()), string(img.Owner())).
		Updates(map[string]any{
			"visibility": string(d.Visibility), "description": d.Description, "tags": tags,
			"search_doc": image.SearchDocument(img.Filename(), d),
		})
	if res.Error != nil {
		return gormstore.MapErr(res.Error)
	}
	// Rows matched, not changed, on both dialects (MySQL's connection sets CLIENT_FOUND_ROWS):
	// an update that changes nothing still finds its row.
	if res.RowsAffected == 0 {
		return image.ErrNotFound
	}
	return nil
}

// Delete is one statement, so of two concurrent deletes of one image only one counts it.
func (r repo) Delete(ctx context.Context, owner identity.UserID, ids []image.ID) (int, error) {
	keep := plausible(ids)
	if len(keep) == 0 {
		return 0, nil
	}
	res := r.db.WithContext(ctx).Where("owner_id = ? AND id IN ?", string(owner), keep).Delete(&imageRow{})
	if res.Error != nil {
		return 0, gormstore.MapErr(res.Error)
	}
	return int(res.RowsAffected), nil
}

func (r repo) DeleteByOwner(ctx context.Context, owner identity.UserID) error {
	return gormstore.MapErr(r.db.WithContext(ctx).Where("owner_id = ?", string(owner)).Delete(&imageRow{}).Error)
}

// MarkThumbnail's UPDATE decides whether the image still exists: it waits for a deletion of
// the row in progress, and the DSN reports rows matched (clientFoundRows), so an image whose
// thumbnail was already recorded still counts.
func (r repo) MarkThumbnail(ctx context.Context, id image.ID) error {
	if !image.PlausibleID(string(id)) {
		return image.ErrNotFound
	}
	res := r.db.WithContext(ctx).Model(&imageRow{}).Where("id = ?", string(id)).Update("has_thumbnail", true)
	if res.Error != nil {
		return gormstore.MapErr(res.Error)
	}
	if res.RowsAffected == 0 {
		return image.ErrNotFound
	}
	return nil
}

func (r repo) Existing(ctx context.Context, ids []image.ID) (map[image.ID]bool, error) {
	out := map[image.ID]bool{}
	for chunk := range slices.Chunk(plausible(ids), lookupBatch) {
		var found []string
		err := r.db.WithContext(ctx).Model(&imageRow{}).Where("id IN ?", chunk).Pluck("id", &found).Error
		if err != nil {
			return nil, gormstore.MapErr(err)
		}
		for _, id := range found {
			out[image.ID(id)] = true
		}
	}
	return out, nil
}

// plausible returns the ids that could name an image (image.PlausibleID), each once, as
// strings for an IN list.
func plausible(ids []image.ID) []string {
	out := make([]string, 0, len(ids))
	seen := make(map[image.ID]bool, len(ids))
	for _, id := range ids {
		if image.PlausibleID(string(id)) && !seen[id] {
			seen[id] = true
			out = append(out, string(id))
		}
	}
	return out
}
