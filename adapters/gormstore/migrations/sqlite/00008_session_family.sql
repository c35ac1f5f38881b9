-- A login's refresh tokens share a family secret: family_hash is its hex SHA-256. See the
-- MySQL migration of the same number.

-- +goose Up
ALTER TABLE sessions ADD COLUMN family_hash TEXT NULL;

-- +goose Down
ALTER TABLE sessions DROP COLUMN family_hash;
