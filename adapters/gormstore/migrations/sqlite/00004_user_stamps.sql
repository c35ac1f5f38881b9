-- Per-user change counters that contexts keep for their caches, by scope ("posts=12": the
-- author's committed post writes, which the post-list cache keys pages by). The counter was
-- posts_version, which tied the identity row to posts; now the row keeps a counter for any
-- scope, naming none. They stay on the user's row, which the principal read of every request
-- reads anyway.

-- +goose Up
ALTER TABLE users ADD COLUMN stamps TEXT NOT NULL DEFAULT '';
UPDATE users SET stamps = 'posts=' || posts_version WHERE posts_version > 0;
ALTER TABLE users DROP COLUMN posts_version;

-- +goose Down
ALTER TABLE users ADD COLUMN posts_version INTEGER NOT NULL DEFAULT 0;
UPDATE users SET posts_version = CAST(substr(stamps, instr(stamps, 'posts=') + 6) AS INTEGER)
    WHERE instr(stamps, 'posts=') > 0;
ALTER TABLE users DROP COLUMN stamps;
