package mediagorm

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/media/image"
)

// The storage model mirrors the table created by the migrations (00007_media.sql); the
// migrations, not these tags, define the schema. SQLite's table also has doc_id, the rowid its
// search index refers to, which SQLite assigns and the application never reads.

// imageRow is one row of the images table.
type imageRow struct {
	ID          string `gorm:"column:id;primaryKey"`
	OwnerID     string `gorm:"column:owner_id"`
	Filename    string `gorm:"column:filename"`
	Format      string `gorm:"column:format"`
	Bytes       int64  `gorm:"column:bytes"`
	Width       int    `gorm:"column:width"`
	Height      int    `gorm:"column:height"`
	SHA256      []byte `gorm:"column:sha256"`
	Visibility  string `gorm:"column:visibility"`
	Description string `gorm:"column:description"`
	// Tags is a JSON array of strings.
	Tags string `gorm:"column:tags"`
	// SearchDoc is image.SearchDocument of the file name and details; only searches read it.
	SearchDoc    string    `gorm:"column:search_doc"`
	HasThumbnail bool      `gorm:"column:has_thumbnail"`
	CreatedAt    time.Time `gorm:"column:created_at;autoCreateTime:false"`
}

func (imageRow) TableName() string { return "images" }

// columns are what reads select: everything but the search document, which only the search
// condition needs.
var columns = []string{
	"id", "owner_id", "filename", "format", "bytes", "width", "height", "sha256",
	"visibility", "description", "tags", "has_thumbnail", "created_at",
}

// encodeTags keeps tags as a JSON array; no tags is "[]", never "null".
func encodeTags(tags []string) (string, error) {
	if tags == nil {
		tags = []string{}
	}
	b, err := json.Marshal(tags)
	if err != nil {
		return "", fmt.Errorf("mediagorm: encode tags: %w", err)
	}
	return string(b), nil
}

func toRow(img *image.Image) (imageRow, error) {
	d := img.Details()
	tags, err := encodeTags(d.Tags)
	if err != nil {
		return imageRow{}, err
	}
	c := img.Content()
	return imageRow{
		ID: string(img.ID()), OwnerID: string(img.Owner()), Filename: img.Filename(),
		Format: string(c.Format), Bytes: c.Bytes, Width: c.Width, Height: c.Height, SHA256: c.SHA256,
		Visibility: string(d.Visibility), Description: d.Description, Tags: tags,
		SearchDoc:    image.SearchDocument(img.Filename(), d),
		HasThumbnail: img.HasThumbnail(), CreatedAt: gormstore.DBTime(img.CreatedAt()),
	}, nil
}

func (r *imageRow) toDomain() (*image.Image, error) {
	tags := []string{}
	if err := json.Unmarshal([]byte(r.Tags), &tags); err != nil {
		return nil, fmt.Errorf("mediagorm: image %s: corrupt tags: %w", r.ID, err)
	}
	if tags == nil {
		tags = []string{}
	}
	if len(r.SHA256) != 32 {
		return nil, fmt.Errorf("mediagorm: image %s: hash of %d bytes", r.ID, len(r.SHA256))
	}
	c := image.Content{
		Format: image.Format(r.Format), Bytes: r.Bytes, Width: r.Width, Height: r.Height,
		SHA256: append([]byte(nil), r.SHA256...),
	}
	d := image.Details{Visibility: image.Visibility(r.Visibility), Description: r.Description, Tags: tags}
	return image.Rehydrate(image.ID(r.ID), identity.UserID(r.OwnerID), r.Filename, c, d, r.HasThumbnail, r.CreatedAt), nil
}

func toDomain(rows []imageRow) ([]*image.Image, error) {
	out := make([]*image.Image, 0, len(rows))
	for i := range rows {
		img, err := rows[i].toDomain()
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	return out, nil
}
