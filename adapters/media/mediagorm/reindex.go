package mediagorm

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/domain/media/image"
)

// ReindexMigration recomputes the search documents stored while search words were lower-cased
// rather than case folded (domain.FoldCase), so that a final sigma, a long s or a micro sign
// in a description, a tag or a file name matches however the query spells it. Only images
// whose text holds a character outside ASCII can change, so only they are read.
var ReindexMigration = gormstore.DataMigration{Name: "media: case-folded search documents", Version: 10, Up: reindexImages}

// reindexBatch is how many images the migration reads at a time.
const reindexBatch = 500

func reindexImages(ctx context.Context, tx *sql.Tx, driver string) error {
	query := "SELECT id, filename, description, tags, search_doc FROM images WHERE id > ? AND (" +
		gormstore.NonASCII(driver, "filename") + " OR " + gormstore.NonASCII(driver, "description") + " OR " +
		gormstore.NonASCII(driver, "tags") + ") ORDER BY id LIMIT ?"
	type stored struct{ id, filename, description, tags, doc string }
	for after := ""; ; {
		batch := make([]stored, 0, reindexBatch)
		err := gormstore.EachRow(ctx, tx, query, []any{after, reindexBatch}, func(rows *sql.Rows) error {
			var s stored
			err := rows.Scan(&s.id, &s.filename, &s.description, &s.tags, &s.doc)
			batch = append(batch, s)
			return err
		})
		if err != nil || len(batch) == 0 {
			return err
		}
		for _, s := range batch {
			var tags []string
			if err := json.Unmarshal([]byte(s.tags), &tags); err != nil {
				return fmt.Errorf("mediagorm: image %s: corrupt tags: %w", s.id, err)
			}
			doc := image.SearchDocument(s.filename, image.Details{Description: s.description, Tags: tags})
			if doc == s.doc {
				continue
			}
			if _, err := tx.ExecContext(ctx, "UPDATE images SET search_doc = ? WHERE id = ?", doc, s.id); err != nil {
				return err
			}
		}
		after = batch[len(batch)-1].id
	}
}
