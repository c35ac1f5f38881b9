-- Personal API keys (the accounts context): long-lived secrets that act as their owner.
--
-- Only the hex SHA-256 of a secret is stored (secret_hash); the secret has 256 random bits, so
-- a fast hash is enough, and its unique index is what every request made with a key looks up.
-- prefix is the secret's first 12 characters ("pat_" and 8 more), kept so people can tell keys
-- apart. expires_at is NULL for a key that never expires. last_used_at is written in batches
-- (at most about a minute late), never by the request that used the key.
--
-- The user's keys go with the user (ON DELETE CASCADE). idx_api_keys_user_id serves the list,
-- the count of active keys under the 25-key limit, and the foreign key.
--
-- Timestamps are DATETIME(6) holding UTC, as everywhere (00001_init.sql).

-- +goose Up
CREATE TABLE api_keys (
    id           VARCHAR(36)  NOT NULL,
    user_id      VARCHAR(36)  NOT NULL,
    name         VARCHAR(400) NOT NULL,
    prefix       VARCHAR(12)  NOT NULL,
    secret_hash  CHAR(64)     NOT NULL,
    created_at   DATETIME(6)  NOT NULL,
    expires_at   DATETIME(6)  NULL,
    last_used_at DATETIME(6)  NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_api_keys_secret_hash (secret_hash),
    KEY idx_api_keys_user_id (user_id, id),
    CONSTRAINT fk_api_keys_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE api_keys;
