-- Initial schema for MySQL 8.4 and MariaDB 10.11+.
--
-- Every table uses utf8mb4 (the only MySQL character set that holds all of Unicode) with the
-- binary collation utf8mb4_bin: text round-trips byte for byte, ids sort exactly as Go sorts
-- strings (which keeps time-ordered ids and cursor pages consistent), and the email's unique
-- index compares the normalised (lower-cased) address exactly. A case-insensitive collation
-- is deliberately not used: MySQL's *_ci collations also ignore accents, which would make
-- "jose@x.io" and "josé@x.io" one account. Case folding is done by the application instead.
--
-- Timestamps are DATETIME(6) holding UTC (the connection sets loc=UTC): microseconds, and no
-- time-zone conversion by the server.

-- +goose Up
CREATE TABLE users (
    id            VARCHAR(36)  NOT NULL,
    email         VARCHAR(254) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    name          VARCHAR(400) NOT NULL DEFAULT '',
    -- The name lower-cased by the application, for case-insensitive search.
    name_lower    VARCHAR(400) NOT NULL DEFAULT '',
    role          VARCHAR(16)  NOT NULL,
    -- Counts committed post writes; the post-list cache keys pages by it.
    posts_version BIGINT       NOT NULL DEFAULT 0,
    created_at    DATETIME(6)  NOT NULL,
    updated_at    DATETIME(6)  NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_users_email (email),
    -- Lets the last-admin check lock only the admin rows.
    KEY idx_users_role (role)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE posts (
    id         VARCHAR(36) NOT NULL,
    author_id  VARCHAR(36) NOT NULL,
    -- MEDIUMTEXT holds up to 16 MiB; posts are at most 1 MiB of UTF-8.
    text       MEDIUMTEXT  NOT NULL,
    created_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    -- Serves "this author's posts, newest first, before a cursor" from the index alone.
    KEY idx_posts_author_id_id (author_id, id),
    CONSTRAINT fk_posts_author FOREIGN KEY (author_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE sessions (
    id           VARCHAR(36) NOT NULL,
    user_id      VARCHAR(36) NOT NULL,
    -- Hex SHA-256 of the current refresh token; the token itself is never stored.
    refresh_hash CHAR(64)    NOT NULL,
    created_at   DATETIME(6) NOT NULL,
    expires_at   DATETIME(6) NOT NULL,
    rotated_at   DATETIME(6) NOT NULL,
    revoked_at   DATETIME(6) NULL,
    PRIMARY KEY (id),
    KEY idx_sessions_user_id (user_id),
    CONSTRAINT fk_sessions_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE sessions;
DROP TABLE posts;
DROP TABLE users;
