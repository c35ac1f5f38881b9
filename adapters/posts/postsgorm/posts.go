package postsgorm

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/posts/post"
	"github.com/acme/postsvc/ports/posts"
)

// postRepo implements posts.PostRepository. Every query that names a post also names its
// author, so a post id alone can never reach another user's post.
type postRepo struct {
	db *gorm.DB
	// version, set on the pool's repository, reads an author's version as a prepared
	// statement: it runs on every list request, cached or not.
	version *gormstore.PreparedQuery
}

var _ posts.PostRepository = postRepo{}

func (r postRepo) Add(ctx context.Context, p *post.Post) error {
	row := toPostRow(p)
	err := r.db.WithContext(ctx).Create(&row).Error
	switch {
	case errors.Is(err, gorm.ErrForeignKeyViolated):
		// The author was deleted between authentication and this write.
		return fmt.Errorf("gormstore: post author %s: %w", p.AuthorID(), identity.ErrUnknownUser)
	case errors.Is(err, gorm.ErrDuplicatedKey):
		return fmt.Errorf("gormstore: post %s already exists", p.ID())
	}
	return gormstore.MapErr(err)
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
func (r postRepo) ListByAuthor(ctx context.Context, q posts.PostListQuery) (posts.PostList, error) {
	if q.Limit <= 0 {
		return posts.PostList{Posts: []*post.Post{}}, nil
	}
	var heads []postHead
	tx := r.db.WithContext(ctx).Model(&postRow{}).Select("id", "text_bytes").Where("author_id = ?", string(q.Author))
	if q.Before != "" {
		tx = tx.Where("id < ?", string(q.Before))
	}
	// One more than the limit tells whether another page follows without a count query.
	if err := tx.Order("id DESC").Limit(q.Limit + 1).Find(&heads).Error; err != nil {
		return posts.PostList{}, gormstore.MapErr(err)
	}
	var (
		ids  []string
		used int64
	)
	for _, h := range heads {
		if len(ids) == q.Limit || !q.Fits(len(ids), used, h.TextBytes) {
			break
		}
		ids = append(ids, h.ID)
		used += h.TextBytes
	}
	out := posts.PostList{Posts: make([]*post.Post, 0, len(ids)), More: len(heads) > len(ids)}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := r.db.WithContext(ctx).Model(&postRow{}).Select("id", "text", "created_at").
		Where("author_id = ? AND id IN ?", string(q.Author), ids).Order("id DESC").Rows()
	if err != nil {
		return posts.PostList{}, gormstore.MapErr(err)
	}
	defer rows.Close()
	used = 0
	for rows.Next() {
		var (
			id, text  string
			createdAt time.Time
		)
		if err := rows.Scan(&id, &text, &createdAt); err != nil {
			return posts.PostList{}, gormstore.MapErr(err)
		}
		p := post.Rehydrate(post.ID(id), q.Author, text, createdAt)
		n := q.SizeOf(p)
		if !q.Fits(len(out.Posts), used, n) {
			out.More = true
			break
		}
		out.Posts = append(out.Posts, p)
		used += n
	}
	if err := rows.Err(); err != nil {
		return posts.PostList{}, gormstore.MapErr(err)
	}
	return out, nil
}

// postHead is what the first step of ListByAuthor reads: no text.
type postHead struct {
	ID        string `gorm:"column:id"`
	TextBytes int64  `gorm:"column:text_bytes"`
}

// DeleteByAuthor deletes the author's posts and version (the foreign keys would cascade when
// the user goes; deleting here keeps the context correct on its own).
func (r postRepo) DeleteByAuthor(ctx context.Context, author identity.UserID) error {
	if err := r.db.WithContext(ctx).Where("author_id = ?", string(author)).Delete(&postRow{}).Error; err != nil {
		return gormstore.MapErr(err)
	}
	return gormstore.MapErr(r.db.WithContext(ctx).Exec(`DELETE FROM post_versions WHERE user_id = ?`, string(author)).Error)
}

// versionSQL reads an author's version; no row means the author never wrote.
const versionSQL = `SELECT version FROM post_versions WHERE user_id = ?`

func (r postRepo) Version(ctx context.Context, author identity.UserID) (int64, error) {
	var row *sql.Row
	if r.version != nil {
		row = r.version.QueryRow(ctx, string(author))
	} else {
		row = r.db.Statement.ConnPool.QueryRowContext(ctx, versionSQL, string(author))
	}
	var v int64
	err := row.Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, gormstore.MapErr(err)
}

// The upsert of BumpVersion, in each dialect: the first write of an author creates its row.
const (
	bumpVersionMySQL  = `INSERT INTO post_versions (user_id, version) VALUES (?, 1) ON DUPLICATE KEY UPDATE version = version + 1`
	bumpVersionSQLite = `INSERT INTO post_versions (user_id, version) VALUES (?, 1) ON CONFLICT (user_id) DO UPDATE SET version = version + 1`
)

func (r postRepo) BumpVersion(ctx context.Context, author identity.UserID) error {
	stmt := bumpVersionSQLite
	if gormstore.IsMySQL(r.db) {
		stmt = bumpVersionMySQL
	}
	err := r.db.WithContext(ctx).Exec(stmt, string(author)).Error
	if errors.Is(err, gorm.ErrForeignKeyViolated) {
		return fmt.Errorf("postsgorm: post author %s: %w", author, identity.ErrUnknownUser)
	}
	return gormstore.MapErr(err)
}
