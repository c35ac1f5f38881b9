-- Each author's post texts in bytes, the total the posts quota is checked against on every
-- add. The MySQL migration of the same number explains it. Authors with posts before it are
-- counted from their posts.

-- +goose Up
CREATE TABLE post_usage (
    author_id  TEXT    NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    text_bytes INTEGER NOT NULL DEFAULT 0
);
INSERT INTO post_usage (author_id, text_bytes)
    SELECT author_id, SUM(text_bytes) FROM posts GROUP BY author_id;

-- +goose Down
DROP TABLE post_usage;
