package postsgorm

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/posts/post"
	"github.com/acme/postsvc/ports/posts"
)

// postRepo implements posts.PostRepository. Every query that names a post also names its
// author, so a post id alone can never reach another user's post.
type postRepo struct {
	db *gorm.DB
	// known is the store's set of authors whose total exists (nil: none known).
	known *knownAuthors
	// betweenSteps, when set (by tests), runs between the two statements of ListByAuthor,
	// where concurrent writers can change what the second one finds.
	betweenSteps func(ctx context.Context)
}

var _ posts.PostRepository = postRepo{}

// Add counts p's text into its author's total (post_usage) within quota, then inserts it. The
// total's row is made on the author's first post; the count is one conditional UPDATE, atomic
// on its own, so concurrent adds can never pass the quota together, whoever holds which lock.
func (r postRepo) Add(ctx context.Context, p *post.Post, quota int64) error {
	if err := r.reserve(ctx, p.AuthorID(), int64(len(p.Text())), quota); err != nil {
		return err
	}
	_, err := gormstore.ExecPrepared(ctx, r.db, InsertSQL,
		string(p.ID()), string(p.AuthorID()), p.Text(), int64(len(p.Text())), gormstore.DBTime(p.CreatedAt()))
	switch {
	case errors.Is(err, gorm.ErrForeignKeyViolated):
		// The author was deleted between authentication and this write.
		return fmt.Errorf("gormstore: post author %s: %w", p.AuthorID(), identity.ErrUnknownUser)
	case errors.Is(err, gorm.ErrDuplicatedKey):
		return fmt.Errorf("gormstore: post %s already exists", p.ID())
	}
	return gormstore.MapErr(err)
}

// reserve adds n bytes to author's total when it stays within quota, and answers
// post.ErrQuotaExceeded otherwise.
//
// The total's row is made first for an author this process has not seen with one, before
// the conditional UPDATE, never after it: on InnoDB an UPDATE that finds no row locks the gap
// where the row would be, and new authors' ids (UUIDv7, in time order) all fall into the same
// gap, the last one, so the first adds of authors signed up together each locked that gap and
// then waited to insert into it: deadlocks, 23 for 128 first adds of new users at once over
// HTTP on MariaDB, each a retry of the whole transaction, and a 503 once the unit of work's
// five attempts are spent. Made first, the row is there when the UPDATE runs, which then
// locks that row only.
func (r postRepo) reserve(ctx context.Context, author identity.UserID, n, quota int64) error {
	made := false
	if !r.known.has(author) {
		if err := r.makeUsage(ctx, author); err != nil {
			return err
		}
		made = true
	}
	for {
		res, err := gormstore.ExecPrepared(ctx, r.db, UsageAddSQL, n, string(author), n, quota)
		if err != nil {
			return gormstore.MapErr(err)
		}
		if rows, err := res.RowsAffected(); err != nil || rows == 1 {
			if err == nil {
				r.known.add(author)
			}
			return gormstore.MapErr(err)
		}
		// No row counted it: the author is past the quota, or, known to have a total, has
		// none any more (it was made in a transaction that was rolled back).
		if made || n > quota {
			return post.ErrQuotaExceeded
		}
		if err := r.makeUsage(ctx, author); err != nil {
			return err
		}
		made = true
	}
}

// makeUsage makes author's total, at 0 bytes, unless it exists.
func (r postRepo) makeUsage(ctx context.Context, author identity.UserID) error {
	err := r.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).
		Create(&usageRow{AuthorID: string(author)}).Error
	if errors.Is(err, gorm.ErrForeignKeyViolated) {
		return fmt.Errorf("gormstore: post author %s: %w", author, identity.ErrUnknownUser)
	}
	return gormstore.MapErr(err)
}

// knownAuthors is the set of authors whose total this process has seen exist, so that their
// adds run the conditional UPDATE alone. It forgets everything past maxKnownAuthors, which
// costs each author one more statement on its next add.
type knownAuthors struct {
	mu  sync.RWMutex
	ids map[identity.UserID]struct{}
}

const maxKnownAuthors = 1 << 16

func (k *knownAuthors) has(author identity.UserID) bool {
	if k == nil {
		return false
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	_, ok := k.ids[author]
	return ok
}

func (k *knownAuthors) add(author identity.UserID) {
	if k == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.ids == nil || len(k.ids) >= maxKnownAuthors {
		k.ids = make(map[identity.UserID]struct{})
	}
	k.ids[author] = struct{}{}
}

func (r postRepo) ByID(ctx context.Context, author identity.UserID, id post.ID) (*post.Post, error) {
	var row postRow
	err := r.db.WithContext(ctx).Where("id = ? AND author_id = ?", string(id), string(author)).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, post.ErrNotFound
	}
	if err != nil {
		return nil, gormstore.MapErr(err)
	}
	return row.toDomain(), nil
}

func (r postRepo) Delete(ctx context.Context, author identity.UserID, id post.ID) error {
	// The author's total first gives the post's bytes back (none when there is no such post:
	// the delete below then finds nothing and the transaction is rolled back).
	if _, err := gormstore.ExecPrepared(ctx, r.db, UsageSubSQL, string(id), string(author), string(author)); err != nil {
		return gormstore.MapErr(err)
	}
	res := r.db.WithContext(ctx).Where("id = ? AND author_id = ?", string(id), string(author)).Delete(&postRow{})
	if res.Error != nil {
		return gormstore.MapErr(res.Error)
	}
	if res.RowsAffected == 0 {
		return post.ErrNotFound
	}
	return nil
}

// ListByAuthor reads a page in two steps, so that it never holds texts it will not return.
// The first reads only ids and text lengths from the (author_id, id, text_bytes) index, and
// keeps the prefix whose texts fit q.MaxBytes by length alone, a lower bound of their size.
// The second reads those posts' texts one row at a time and stops at the first that does not
// fit by its real size (which may count escaping). On MySQL, closing the rows early still
// drains what the server already sent, which the first step bounds to about MaxBytes.
//
// The page is what the first step saw, less the posts deleted before the second: a post
// written in between is not served, nor may it take a kept post's place. Ids are made before
// their post's transaction waits for the author's lock, so posts of one author commit out of
// id order, and one committed between the two steps can have an id inside the kept range.
// When it took a place under the second step's LIMIT, a post the author had written (and had
// been answered for) before this list began fell off the page: under 64 concurrent adds and
// lists on MySQL, about one list in 300 left the caller's own post off a first page of
// limit=100 holding two posts and a next_cursor.
func (r postRepo) ListByAuthor(ctx context.Context, q posts.PostListQuery) (posts.PostList, error) {
	if q.Limit <= 0 {
		return posts.PostList{Posts: []*post.Post{}}, nil
	}
	heads, err := r.heads(ctx, q)
	if err != nil {
		return posts.PostList{}, gormstore.MapErr(err)
	}
	var (
		ids         = make([]string, 0, min(len(heads), q.Limit))
		used, bound int64
	)
	for _, h := range heads {
		if len(ids) == q.Limit || !q.Fits(len(ids), used, h.TextBytes) {
			break
		}
		ids = append(ids, h.ID)
		used += h.TextBytes
		bound += q.Bound(post.ID(h.ID), h.TextBytes)
	}
	// Nearly always the kept posts fit whatever their texts hold, and the second step need
	// not size them (Size walks every text, which the response's encoding does again).
	measure := !q.Unmeasured(bound)
	out := posts.PostList{Posts: make([]*post.Post, 0, len(ids)), More: len(heads) > len(ids)}
	if len(ids) == 0 {
		return out, nil
	}
	if r.betweenSteps != nil {
		r.betweenSteps(ctx)
	}
	// The kept heads are the author's newest posts below the cursor, consecutive in the
	// (author_id, id) index, so the range between the first and the last, at most as many rows,
	// reads exactly them with one statement shape (which can be prepared). A post written in
	// between with an id inside that range is skipped (see above); should such posts have
	// taken places under the LIMIT, the kept posts still unread are read on below the last row
	// (textsBelowSQL), so none of them is left off.
	used = 0
	unseen := keptIDs(ids)
	query, upper := textsSQL, ids[0]
	for {
		last, full, err := r.texts(ctx, q, query, upper, ids[len(ids)-1], measure, &unseen, &out, &used)
		if err != nil {
			return posts.PostList{}, err
		}
		if full || len(unseen) == 0 {
			return out, nil
		}
		query, upper = textsBelowSQL, last
	}
}

// texts runs one statement of ListByAuthor's second step: the author's posts from upper (below
// it for textsBelowSQL) down to lower, at most as many as unseen holds. It appends the kept
// posts that fit to out, skipping posts written since the first step, and returns the id of
// the last row it read and whether the page is full (a post did not fit; only sized when
// measure is set, otherwise every kept post fits). When the range ran
// out before the LIMIT, unseen is left empty: the kept posts not met were deleted since.
func (r postRepo) texts(ctx context.Context, q posts.PostListQuery, query, upper, lower string,
	measure bool, unseen *keptIDs, out *posts.PostList, used *int64,
) (last string, full bool, err error) {
	limit := len(*unseen)
	rows, err := gormstore.QueryPrepared(ctx, r.db, query, string(q.Author), upper, lower, limit)
	if err != nil {
		return "", false, gormstore.MapErr(err)
	}
	defer rows.Close()
	// The scan's destinations live outside the loop: Scan takes their addresses, so declared
	// inside they would be allocated again for every row.
	var (
		id, text  string
		createdAt gormstore.Timestamp
		read      int
	)
	for rows.Next() {
		if err := rows.Scan(&id, &text, &createdAt); err != nil {
			return "", false, gormstore.MapErr(err)
		}
		read++
		last = id
		if !unseen.take(id) {
			continue // written after the first step: not on this page
		}
		p := post.Rehydrate(post.ID(id), q.Author, text, createdAt.T)
		if measure {
			n := q.SizeOf(p)
			if !q.Fits(len(out.Posts), *used, n) {
				out.More = true
				return last, true, nil
			}
			*used += n
		}
		out.Posts = append(out.Posts, p)
	}
	if err := rows.Err(); err != nil {
		return "", false, gormstore.MapErr(err)
	}
	if read < limit {
		*unseen = (*unseen)[:0]
	}
	return last, false, nil
}

// keptIDs are the ids the first step of ListByAuthor kept and the second has not met yet, in
// the order both statements read them (the database's own, id descending).
type keptIDs []string

// take reports whether id is one of them, and drops it with those before it: the second step
// meets the kept posts in the same order, so any passed over were deleted in between. A row
// that is not among them was written in between. Nearly always id is the first.
func (u *keptIDs) take(id string) bool {
	k := slices.Index(*u, id)
	if k < 0 {
		return false
	}
	*u = (*u)[k+1:]
	return true
}

// postHead is what the first step of ListByAuthor reads: no text.
type postHead struct {
	ID        string
	TextBytes int64
}

// heads reads the first step of ListByAuthor: one more than the limit tells whether another
// page follows without a count query. The list is the hot path of a cache miss, so both of its
// queries run prepared (gormstore.QueryPrepared), without GORM's statement builder and
// reflective scanning, as the principal read does; the SQL is the same on both dialects.
func (r postRepo) heads(ctx context.Context, q posts.PostListQuery) ([]postHead, error) {
	var (
		rows *sql.Rows
		err  error
	)
	if q.Before == "" {
		rows, err = gormstore.QueryPrepared(ctx, r.db, headsSQL, string(q.Author), q.Limit+1)
	} else {
		rows, err = gormstore.QueryPrepared(ctx, r.db, HeadsBeforeSQL, string(q.Author), string(q.Before), q.Limit+1)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	heads := make([]postHead, 0, q.Limit+1)
	var h postHead // outside the loop, like ListByAuthor's destinations
	for rows.Next() {
		if err := rows.Scan(&h.ID, &h.TextBytes); err != nil {
			return nil, err
		}
		heads = append(heads, h)
	}
	return heads, rows.Err()
}

// DeleteByAuthor deletes the author's posts (the foreign key would cascade when the user
// goes; deleting here keeps the context correct on its own).
func (r postRepo) DeleteByAuthor(ctx context.Context, author identity.UserID) error {
	if err := r.db.WithContext(ctx).Where("author_id = ?", string(author)).Delete(&postRow{}).Error; err != nil {
		return gormstore.MapErr(err)
	}
	return gormstore.MapErr(r.db.WithContext(ctx).Where("author_id = ?", string(author)).Delete(&usageRow{}).Error)
}

// The list's statements: the same on both dialects. HeadsBeforeSQL and TextsSQL are what the
// load runner's list ceiling (test/load) issues too, so that it measures this adapter's queries
// as raw database/sql runs them. The adapter runs TextsSQL as textsSQL, which selects
// +created_at so that SQLite's driver hands the timestamp over as text for
// gormstore.Timestamp to parse, instead of parsing it the slow way; the rows are the same.
const (
	headsSQL       = "SELECT id, text_bytes FROM posts WHERE author_id = ? ORDER BY id DESC LIMIT ?"
	HeadsBeforeSQL = "SELECT id, text_bytes FROM posts WHERE author_id = ? AND id < ? ORDER BY id DESC LIMIT ?"
	TextsSQL       = "SELECT id, text, created_at FROM posts WHERE author_id = ? AND id <= ? AND id >= ? ORDER BY id DESC LIMIT ?"
	textsSQL       = "SELECT id, text, +created_at FROM posts WHERE author_id = ? AND id <= ? AND id >= ? ORDER BY id DESC LIMIT ?"
	// textsBelowSQL goes on below the last row textsSQL read, when posts written between the
	// list's two steps took places under its LIMIT (rare: see ListByAuthor).
	textsBelowSQL = "SELECT id, text, +created_at FROM posts WHERE author_id = ? AND id < ? AND id >= ? ORDER BY id DESC LIMIT ?"
	// InsertSQL adds a post (Add, prepared once per connection); the load runner's add
	// ceiling runs it too.
	InsertSQL = "INSERT INTO posts (id, author_id, text, text_bytes, created_at) VALUES (?, ?, ?, ?, ?)"
	// UsageAddSQL counts a new post's bytes into its author's total while the total stays
	// within the quota (Add; the add ceiling runs it too): one row changed, or none when the
	// post does not fit or the author has no total yet.
	UsageAddSQL = "UPDATE post_usage SET text_bytes = text_bytes + ? WHERE author_id = ? AND text_bytes + ? <= ?"
	// UsageSubSQL gives a deleted post's bytes back to its author's total.
	UsageSubSQL = "UPDATE post_usage SET text_bytes = text_bytes - COALESCE((SELECT text_bytes FROM posts WHERE id = ? AND author_id = ?), 0) WHERE author_id = ?"
)
