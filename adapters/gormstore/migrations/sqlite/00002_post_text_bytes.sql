-- Posts carry the byte length of their text, and the author index covers it, so a list page
-- can be cut to its byte budget (4 MiB of encoded posts) by reading the index alone, before any
-- text is read. length() counts characters for TEXT values, so the text is measured as a BLOB.

-- +goose Up
ALTER TABLE posts ADD COLUMN text_bytes INTEGER NOT NULL DEFAULT 0;
UPDATE posts SET text_bytes = length(CAST(text AS BLOB));
CREATE INDEX idx_posts_author_page ON posts (author_id, id, text_bytes);
DROP INDEX idx_posts_author_id_id;

-- +goose Down
CREATE INDEX idx_posts_author_id_id ON posts (author_id, id);
DROP INDEX idx_posts_author_page;
ALTER TABLE posts DROP COLUMN text_bytes;
