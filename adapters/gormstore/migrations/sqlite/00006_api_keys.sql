-- Personal API keys (the accounts context). The MySQL migration of the same number explains
-- the design: only the hex SHA-256 of a secret is stored, under a unique index that every
-- request made with a key looks up; prefix is the secret's first 12 characters; expires_at is
-- NULL for a key that never expires; last_used_at is written in batches, never per request.
--
-- The user's keys go with the user (ON DELETE CASCADE, with PRAGMA foreign_keys=ON, which the
-- adapter's DSN sets). Timestamp columns are declared DATETIME, exactly, and hold UTC text
-- (00001_init.sql).

-- +goose Up
CREATE TABLE api_keys (
    id           TEXT     NOT NULL PRIMARY KEY,
    user_id      TEXT     NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT     NOT NULL,
    prefix       TEXT     NOT NULL,
    secret_hash  TEXT     NOT NULL,
    created_at   DATETIME NOT NULL,
    expires_at   DATETIME,
    last_used_at DATETIME
);
CREATE UNIQUE INDEX uq_api_keys_secret_hash ON api_keys (secret_hash);
CREATE INDEX idx_api_keys_user_id ON api_keys (user_id, id);

-- +goose Down
DROP TABLE api_keys;
