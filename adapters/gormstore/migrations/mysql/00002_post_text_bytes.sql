-- Posts carry the byte length of their text, and the author index covers it, so a list page
-- can be cut to its byte budget (4 MiB of encoded posts) by reading the index alone, before any
-- text leaves the database. Without it, a page of 100 posts of 1 MiB was read whole into
-- memory and then cut.

-- +goose Up
ALTER TABLE posts ADD COLUMN text_bytes INT NOT NULL DEFAULT 0 AFTER text;
UPDATE posts SET text_bytes = LENGTH(text);
-- The new index also serves the foreign key on author_id, so the old one can go in the same
-- statement.
ALTER TABLE posts
    ADD KEY idx_posts_author_page (author_id, id, text_bytes),
    DROP KEY idx_posts_author_id_id;

-- +goose Down
ALTER TABLE posts
    ADD KEY idx_posts_author_id_id (author_id, id),
    DROP KEY idx_posts_author_page;
ALTER TABLE posts DROP COLUMN text_bytes;
