-- Images (the media context): one row per stored picture. The bytes themselves live in object
-- storage under a key derived from owner_id and id (domain/media/image); a row exists only for
-- an object that was stored whole, so a row never points at a missing object.
--
-- id is a UUIDv7 made at upload, so ids sort by upload time: every listing is "id below the
-- cursor, ORDER BY id DESC", served by an index that starts with what the listing filters on:
-- idx_images_owner_id for an owner's images (it also serves the foreign key, DeleteByOwner
-- and the owner's quota sum, which is why bytes rides along in it: the sum is then read from
-- the index alone), idx_images_visibility_id for everyone's public images.
--
-- filename is at most 255 bytes of UTF-8 (image.CleanFilename), description at most 1,000
-- characters, tags at most 20 of at most 32 characters, kept as a JSON array of strings in
-- the order given. sha256 is the hash of the stored (cleaned) bytes. has_thumbnail records
-- that the thumbnail object has been stored.
--
-- Search. search_doc is image.SearchDocument: one token per distinct word of the description,
-- tags and file name, each "w" and the hex of the folded (lower-case, accent-free) word's
-- bytes, separated by spaces; a query must find every one of its tokens (MATCH ... AGAINST
-- with "+token" in boolean mode). The tokens exist because of InnoDB's FULLTEXT parser: it
-- skips words shorter than innodb_ft_min_token_size (3 by default, and read-only at run
-- time) and a list of stop words ("a", "the", "it"), and MariaDB has no ngram parser to index
-- shorter words with. A token is at least 3 characters of [a-z0-9], never a stop word (no word
-- of InnoDB's stop list starts with "w" and a hex digit), at most 83 characters (under innodb_ft_max_token_size,
-- 84), so the default parser indexes every word, "ox" included, and only ever matches whole
-- words. The column is ascii, as the tokens are. It is MEDIUMTEXT, not TEXT: a document is
-- typically a few hundred bytes, but a token can be up to 83 bytes for a word of two
-- characters (letters whose compatibility decomposition is long), and the bound a TEXT column
-- would need (64 KiB) is not one anybody should have to prove for every description, tag and
-- file name the contract admits; MEDIUMTEXT costs one more length byte.
--
-- InnoDB applies changes to a FULLTEXT index when their transaction commits: a search inside a
-- transaction does not see the rows that transaction added or changed.
--
-- The owner's images go with the owner (ON DELETE CASCADE). Timestamps are DATETIME(6)
-- holding UTC, as everywhere (00001_init.sql).

-- +goose Up
CREATE TABLE images (
    id            VARCHAR(36)  NOT NULL,
    owner_id      VARCHAR(36)  NOT NULL,
    -- At most 255 bytes of UTF-8, so at most 255 characters.
    filename      VARCHAR(255) NOT NULL,
    -- image.Format: png, jpeg, gif or webp, recognised from the bytes.
    format        VARCHAR(8)   NOT NULL,
    bytes         BIGINT       NOT NULL,
    width         INT          NOT NULL,
    height        INT          NOT NULL,
    -- SHA-256 of the stored bytes.
    sha256        BINARY(32)   NOT NULL,
    visibility    VARCHAR(8)   NOT NULL,
    -- At most 1,000 characters (4,000 bytes).
    description   TEXT         NOT NULL,
    -- JSON array of at most 20 lower-cased tags of at most 32 characters.
    tags          TEXT         NOT NULL,
    -- image.SearchDocument: space-separated tokens, see above.
    search_doc    MEDIUMTEXT   CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    has_thumbnail BOOLEAN      NOT NULL DEFAULT FALSE,
    created_at    DATETIME(6)  NOT NULL,
    PRIMARY KEY (id),
    -- An owner's images newest first below a cursor; their quota sum from the index alone.
    KEY idx_images_owner_id (owner_id, id, bytes),
    -- Everyone's public images newest first below a cursor.
    KEY idx_images_visibility_id (visibility, id),
    FULLTEXT KEY ftx_images_search_doc (search_doc),
    CONSTRAINT fk_images_owner FOREIGN KEY (owner_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT chk_images_visibility CHECK (visibility IN ('private', 'public'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE images;
