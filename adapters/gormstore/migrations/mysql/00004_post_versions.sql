-- The posts context keeps its own freshness information: how many post writes of each author
-- have committed, which the post-list cache keys pages by. It lived on users (posts_version),
-- which tied the identity kernel to posts; now the accounts context's table knows nothing of
-- posts. A row appears on an author's first write; deleting the user cascades to it.

-- +goose Up
CREATE TABLE post_versions (
    user_id VARCHAR(36) NOT NULL,
    version BIGINT      NOT NULL,
    PRIMARY KEY (user_id),
    CONSTRAINT fk_post_versions_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO post_versions (user_id, version) SELECT id, posts_version FROM users WHERE posts_version > 0;
ALTER TABLE users DROP COLUMN posts_version;

-- +goose Down
ALTER TABLE users ADD COLUMN posts_version BIGINT NOT NULL DEFAULT 0 AFTER role;
UPDATE users u JOIN post_versions v ON v.user_id = u.id SET u.posts_version = v.version;
DROP TABLE post_versions;
