-- The posts context keeps its own freshness information: how many post writes of each author
-- have committed, which the post-list cache keys pages by. It lived on users (posts_version),
-- which tied the identity kernel to posts; now the accounts context's table knows nothing of
-- posts. A row appears on an author's first write; deleting the user cascades to it.

-- +goose Up
CREATE TABLE post_versions (
    user_id TEXT    NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    version INTEGER NOT NULL
);
INSERT INTO post_versions (user_id, version) SELECT id, posts_version FROM users WHERE posts_version > 0;
ALTER TABLE users DROP COLUMN posts_version;

-- +goose Down
ALTER TABLE users ADD COLUMN posts_version INTEGER NOT NULL DEFAULT 0;
UPDATE users SET posts_version = COALESCE((SELECT version FROM post_versions WHERE user_id = users.id), 0);
DROP TABLE post_versions;
