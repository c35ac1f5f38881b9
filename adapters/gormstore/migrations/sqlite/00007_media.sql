-- Images (the media context): one row per stored picture. The MySQL migration of the same number
-- explains the design; in short: the bytes live in object storage, id is a UUIDv7 so listings
-- are "id below the cursor, ORDER BY id DESC" on (owner_id, id) or (visibility, id), tags are a
-- JSON array, and search_doc is image.SearchDocument (one hex token "w<hex of the folded word>"
-- per distinct word of the description, tags and file name).
--
-- Search uses an FTS5 index, images_fts, over search_doc. It is an external-content table
-- (content='images'): it keeps only the index, never a second copy of the documents, and the
-- triggers below keep it in step with every insert, update and delete of images, those of the
-- ON DELETE CASCADE from users included (foreign key actions fire the child table's triggers).
-- A query is each token quoted, joined by AND; the unicode61 tokenizer keeps our [a-z0-9]
-- tokens whole, so a token only ever matches a whole word. detail=none: the index records
-- which documents hold a token and nothing else (no positions), all that an AND of tokens
-- needs, and the smallest index FTS5 can keep.
--
-- The index refers to rows by rowid, so the rowid must never change: a rowid that no INTEGER
-- PRIMARY KEY names may be renumbered by VACUUM, which would silently point the index at other
-- images. doc_id is therefore an INTEGER PRIMARY KEY (the rowid itself, assigned by SQLite on
-- insert, never read by the application), and id, the image's identity, is UNIQUE: the same
-- two b-trees a TEXT primary key would have made.
--
-- The owner's images go with the owner (ON DELETE CASCADE, with PRAGMA foreign_keys=ON, which
-- the adapter's DSN sets). Timestamp columns are declared DATETIME, exactly, and hold UTC text
-- (00001_init.sql).

-- +goose Up
CREATE TABLE images (
    -- The rowid, for images_fts only.
    doc_id        INTEGER  PRIMARY KEY,
    id            TEXT     NOT NULL UNIQUE,
    owner_id      TEXT     NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- At most 255 bytes of UTF-8.
    filename      TEXT     NOT NULL,
    -- image.Format: png, jpeg, gif or webp, recognised from the bytes.
    format        TEXT     NOT NULL,
    bytes         INTEGER  NOT NULL,
    width         INTEGER  NOT NULL,
    height        INTEGER  NOT NULL,
    -- SHA-256 of the stored bytes, 32 bytes.
    sha256        BLOB     NOT NULL,
    visibility    TEXT     NOT NULL CHECK (visibility IN ('private', 'public')),
    -- At most 1,000 characters.
    description   TEXT     NOT NULL,
    -- JSON array of at most 20 lower-cased tags of at most 32 characters.
    tags          TEXT     NOT NULL,
    -- image.SearchDocument: space-separated tokens, indexed by images_fts.
    search_doc    TEXT     NOT NULL,
    has_thumbnail BOOLEAN  NOT NULL DEFAULT FALSE,
    created_at    DATETIME NOT NULL
);
-- An owner's images newest first below a cursor; their quota sum from the index alone.
CREATE INDEX idx_images_owner_id ON images (owner_id, id, bytes);
-- Everyone's public images newest first below a cursor.
CREATE INDEX idx_images_visibility_id ON images (visibility, id);

CREATE VIRTUAL TABLE images_fts USING fts5(
    search_doc, content='images', content_rowid='doc_id', tokenize='unicode61', detail=none
);

-- +goose StatementBegin
CREATE TRIGGER images_fts_insert AFTER INSERT ON images BEGIN
    INSERT INTO images_fts (rowid, search_doc) VALUES (new.doc_id, new.search_doc);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER images_fts_delete AFTER DELETE ON images BEGIN
    INSERT INTO images_fts (images_fts, rowid, search_doc) VALUES ('delete', old.doc_id, old.search_doc);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER images_fts_update AFTER UPDATE OF search_doc ON images BEGIN
    INSERT INTO images_fts (images_fts, rowid, search_doc) VALUES ('delete', old.doc_id, old.search_doc);
    INSERT INTO images_fts (rowid, search_doc) VALUES (new.doc_id, new.search_doc);
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER images_fts_update;
DROP TRIGGER images_fts_delete;
DROP TRIGGER images_fts_insert;
DROP TABLE images_fts;
DROP TABLE images;
