-- A login's refresh tokens share a family secret (the accounts context, session.Session):
-- family_hash is its hex SHA-256. A refresh token that names a session but does not carry its
-- family was never issued for it (a forgery by someone who knows the session id, which every
-- access token shows); only a token of the family that is not the current one is a replay,
-- which revokes the session. Sessions opened before this migration have none (NULL) and keep
-- the older rule until they expire.

-- +goose Up
ALTER TABLE sessions ADD COLUMN family_hash CHAR(64) NULL AFTER refresh_hash;

-- +goose Down
ALTER TABLE sessions DROP COLUMN family_hash;
