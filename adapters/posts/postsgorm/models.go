package postsgorm

import (
	"time"

	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/posts/post"
)

// The storage model mirrors the posts table created by the migrations (adapters/gormstore/
// migrations); the migrations, not these tags, define the schema.

// postRow is one row of the posts table.
type postRow struct {
	ID       string `gorm:"column:id;primaryKey"`
	AuthorID string `gorm:"column:author_id"`
	Text     string `gorm:"column:text"`
	// TextBytes is len(Text), kept beside it so a page can be cut to its byte budget from the
	// index alone, before any text is read (postRepo.ListByAuthor).
	TextBytes int64     `gorm:"column:text_bytes"`
	CreatedAt time.Time `gorm:"column:created_at;autoCreateTime:false"`
}

func (postRow) TableName() string { return "posts" }

// usageRow is one row of the post_usage table: the bytes of an author's post texts, checked
// against the posts quota on every add.
type usageRow struct {
	AuthorID  string `gorm:"column:author_id;primaryKey"`
	TextBytes int64  `gorm:"column:text_bytes"`
}

func (usageRow) TableName() string { return "post_usage" }

func (r *postRow) toDomain() *post.Post {
	return post.Rehydrate(post.ID(r.ID), identity.UserID(r.AuthorID), r.Text, r.CreatedAt)
}
