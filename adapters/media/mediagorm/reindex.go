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

// SharpSReindexMigration recomputes the search documents stored while a sharp s (ß, ẞ) was
// kept as it is rather than folded to "ss", so that "STRASSE" finds an image described
// "Straße". It is the same recomputation as ReindexMigration's, again.
var SharpSReindexMigration = gormstore.DataMigration{Name: "media: search documents with ß folded to ss", Version: 12, Up: reindexImages}

func reindexImages(ctx context.Context, tx *sql.Tx, driver string) error {
	type stored struct{ id, filename, description, tags, doc string }
	return gormstore.EachInBatches(ctx, tx, "SELECT id, filename, description, tags, search_doc FROM images WHERE ("+
		gormstore.NonASCII(driver, "filename")+" OR "+gormstore.NonASCII(driver, "description")+" OR "+
		gormstore.NonASCII(driver, "tags")+") AND id > ? ORDER BY id LIMIT ?", nil,
		func(rows *sql.Rows) (string, stored, error) {
			var s stored
			err := rows.Scan(&s.id, &s.filename, &s.description, &s.tags, &s.doc)
			return s.id, s, err
		},
		func(s stored) error {
			var tags []string
			if err := json.Unmarshal([]byte(s.tags), &tags); err != nil {
				return fmt.Errorf("mediagorm: image %s: corrupt tags: %w", s.id, err)
			}
			doc := image.SearchDocument(s.filename, image.Details{Description: s.description, Tags: tags})
			if doc == s.doc {
				return nil
			}
			_, err := tx.ExecContext(ctx, "UPDATE images SET search_doc = ? WHERE id = ?", doc, s.id)
			return err
		})
}
