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

// LongWordsReindexMigration recomputes the search documents stored while a word over 41
// bytes was cut to its first 41 (and so matched any word that began with them): such a word's
// token is now a hash of the whole word (image.Token). A cut word's token was 83 characters
// long, so only documents at least that long are read.
var LongWordsReindexMigration = gormstore.DataMigration{Name: "media: search documents with long words whole", Version: 14,
	Up: func(ctx context.Context, tx *sql.Tx, _ string) error {
		return reindexWhere(ctx, tx, "LENGTH(search_doc) >= 83")
	}}

// reindexImages recomputes the search documents of the images whose text holds a character
// outside ASCII: only their words change when folding does.
func reindexImages(ctx context.Context, tx *sql.Tx, driver string) error {
	return reindexWhere(ctx, tx, gormstore.NonASCII(driver, "filename")+" OR "+gormstore.NonASCII(driver, "description")+" OR "+
		gormstore.NonASCII(driver, "tags"))
}

// reindexWhere recomputes the search documents of the images that cond selects, and writes
// those that change.
func reindexWhere(ctx context.Context, tx *sql.Tx, cond string) error {
	type stored struct{ id, filename, description, tags, doc string }
	return gormstore.EachInBatches(ctx, tx, "SELECT id, filename, description, tags, search_doc FROM images WHERE ("+
		cond+") AND id > ? ORDER BY id LIMIT ?", nil,
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
