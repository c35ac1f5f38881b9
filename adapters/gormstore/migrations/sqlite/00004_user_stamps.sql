-- Per-user change counters that contexts keep for their caches, by scope ("posts": the
-- author's committed post writes, which the post-list cache keys pages by). They lived on
-- users as posts_version, which tied the identity kernel to posts; now the kernel keeps a
-- counter for any context, knowing none. The principal read returns them with the session,
-- in the same query. A row appears on a scope's first bump; deleting the user cascades.

-- +goose Up
CREATE TABLE user_stamps (
    user_id TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope   TEXT    NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (user_id, scope)
);
INSERT INTO user_stamps (user_id, scope, version) SELECT id, 'posts', posts_version FROM users WHERE posts_version > 0;
ALTER TABLE users DROP COLUMN posts_version;

-- +goose Down
ALTER TABLE users ADD COLUMN posts_version INTEGER NOT NULL DEFAULT 0;
UPDATE users SET posts_version = COALESCE((SELECT version FROM user_stamps WHERE user_id = users.id AND scope = 'posts'), 0);
DROP TABLE user_stamps;
