package gormstore

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/acme/postsvc/domain/post"
	"github.com/acme/postsvc/domain/user"
	"github.com/acme/postsvc/ports"
)

// postRepo implements ports.PostRepository. Every query that names a post also names its
// author, so a post id alone can never reach another user's post.
type postRepo struct{ db *gorm.DB }

var _ ports.PostRepository = postRepo{}

func (r postRepo) Add(ctx context.Context, p *post.Post) error {
	row := toPostRow(p)
	err := r.db.WithContext(ctx).Create(&row).Error
	switch {
	case errors.Is(err, gorm.ErrForeignKeyViolated):
		// The author was deleted between authentication and this write.
		return fmt.Errorf("gormstore: post author %s: %w", p.AuthorID(), user.ErrNotFound)
	case errors.Is(err, gorm.ErrDuplicatedKey):
		return fmt.Errorf("gormstore: post %s already exists", p.ID())
	}
	return mapErr(err)
}

func (r postRepo) ByID(ctx context.Context, author user.ID, id post.ID) (*post.Post, error) {
	var row postRow
	err := r.db.WithContext(ctx).Where("id = ? AND author_id = ?", string(id), string(author)).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, post.ErrNotFound
	}
	if err != nil {
		return nil, mapErr(err)
	}
	return row.toDomain(), nil
}

func (r postRepo) Delete(ctx context.Context, author user.ID, id post.ID) error {
	res := r.db.WithContext(ctx).Where("id = ? AND author_id = ?", string(id), string(author)).Delete(&postRow{})
	if res.Error != nil {
		return mapErr(res.Error)
	}
	if res.RowsAffected == 0 {
		return post.ErrNotFound
	}
	return nil
}

func (r postRepo) ListByAuthor(ctx context.Context, author user.ID, before post.ID, limit int) ([]*post.Post, error) {
	if limit <= 0 {
		return []*post.Post{}, nil
	}
	// The (author_id, id) index serves both the filter and the order, so a page costs the
	// same however deep the cursor is.
	tx := r.db.WithContext(ctx).Where("author_id = ?", string(author))
	if before != "" {
		tx = tx.Where("id < ?", string(before))
	}
	var rows []postRow
	if err := tx.Order("id DESC").Limit(limit).Find(&rows).Error; err != nil {
		return nil, mapErr(err)
	}
	out := make([]*post.Post, len(rows))
	for i := range rows {
		out[i] = rows[i].toDomain()
	}
	return out, nil
}

func (r postRepo) DeleteByAuthor(ctx context.Context, author user.ID) error {
	return mapErr(r.db.WithContext(ctx).Where("author_id = ?", string(author)).Delete(&postRow{}).Error)
}
