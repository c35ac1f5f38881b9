-- Per-user change counters that contexts keep for their caches, by scope ("posts": the
-- author's committed post writes, which the post-list cache keys pages by). They lived on
-- users as posts_version, which tied the identity kernel to posts; now the kernel keeps a
-- counter for any context, knowing none. The principal read returns them with the session,
-- in the same query. A row appears on a scope's first bump; deleting the user cascades.

-- +goose Up
CREATE TABLE user_stamps (
    user_id VARCHAR(36) NOT NULL,
    scope   VARCHAR(32) NOT NULL,
    version BIGINT      NOT NULL,
    PRIMARY KEY (user_id, scope),
    CONSTRAINT fk_user_stamps_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO user_stamps (user_id, scope, version) SELECT id, 'posts', posts_version FROM users WHERE posts_version > 0;
ALTER TABLE users DROP COLUMN posts_version;

-- +goose Down
ALTER TABLE users ADD COLUMN posts_version BIGINT NOT NULL DEFAULT 0 AFTER role;
UPDATE users u JOIN user_stamps st ON st.user_id = u.id AND st.scope = 'posts' SET u.posts_version = st.version;
DROP TABLE user_stamps;
