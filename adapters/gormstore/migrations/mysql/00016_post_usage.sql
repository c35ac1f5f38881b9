-- Each author's post texts in bytes, the total the posts quota (APP_POSTS_QUOTA_BYTES) is
-- checked against on every add: one conditional UPDATE of this row, never a sum over the
-- author's posts (a million 1 KiB posts fit in the default quota). An add counts its text
-- here in its own transaction and a delete gives it back; the row is made on the author's
-- first post. Authors with posts before this migration are counted here from their posts.

-- +goose Up
CREATE TABLE post_usage (
    author_id  VARCHAR(36) NOT NULL,
    text_bytes BIGINT      NOT NULL DEFAULT 0,
    PRIMARY KEY (author_id),
    CONSTRAINT fk_post_usage_author FOREIGN KEY (author_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO post_usage (author_id, text_bytes)
    SELECT author_id, SUM(text_bytes) FROM posts GROUP BY author_id;

-- +goose Down
DROP TABLE post_usage;
