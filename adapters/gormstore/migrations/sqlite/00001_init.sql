-- Initial schema for SQLite.
--
-- SQLite compares text bytewise (the BINARY collation) by default, which is what the MySQL
-- schema gets from utf8mb4_bin: exact text, ids sorted as Go sorts strings, and an exact unique
-- index on the normalised email.
--
-- Timestamp columns are declared DATETIME, exactly, because the driver parses a column back
-- into a time.Time only when its declared type is DATE, DATETIME or TIMESTAMP. Values are
-- written as UTC text, so comparing them in SQL compares instants.
--
-- Foreign keys need PRAGMA foreign_keys=ON on every connection, which the adapter's DSN sets.

-- +goose Up
CREATE TABLE users (
    id            TEXT     NOT NULL PRIMARY KEY,
    email         TEXT     NOT NULL,
    password_hash TEXT     NOT NULL,
    name          TEXT     NOT NULL DEFAULT '',
    -- The name lower-cased by the application, for case-insensitive search.
    name_lower    TEXT     NOT NULL DEFAULT '',
    role          TEXT     NOT NULL,
    -- Counts committed post writes; the post-list cache keys pages by it.
    posts_version INTEGER  NOT NULL DEFAULT 0,
    created_at    DATETIME NOT NULL,
    updated_at    DATETIME NOT NULL
);
CREATE UNIQUE INDEX uq_users_email ON users (email);
CREATE INDEX idx_users_role ON users (role);

CREATE TABLE posts (
    id         TEXT     NOT NULL PRIMARY KEY,
    author_id  TEXT     NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    text       TEXT     NOT NULL,
    created_at DATETIME NOT NULL
);
-- Serves "this author's posts, newest first, before a cursor" from the index alone.
CREATE INDEX idx_posts_author_id_id ON posts (author_id, id);

CREATE TABLE sessions (
    id           TEXT     NOT NULL PRIMARY KEY,
    user_id      TEXT     NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Hex SHA-256 of the current refresh token; the token itself is never stored.
    refresh_hash TEXT     NOT NULL,
    created_at   DATETIME NOT NULL,
    expires_at   DATETIME NOT NULL,
    rotated_at   DATETIME NOT NULL,
    revoked_at   DATETIME
);
CREATE INDEX idx_sessions_user_id ON sessions (user_id);

-- +goose Down
DROP TABLE sessions;
DROP TABLE posts;
DROP TABLE users;
