-- Electrocardiograms (the ecg context): one row per ECG, its samples in packed blocks, and the
-- results of its analyses. The MySQL migration of the same number explains the design; in short:
--
-- ecgs holds what describes an ECG, never its samples (leads is the lead headers as JSON). ecg_id
-- is the client's identifier, unique per owner and case-sensitive: SQLite compares text bytewise
-- (BINARY) by default, which is what the MySQL column gets from ascii_bin.
--
-- ecg_blocks holds the samples, packed (domain/ecg/ecg/block.go) in blocks of at most 65,536
-- samples, one block a row or a run of small ones bundled (adapters/ecg/ecggorm/bundle.go).
-- data_bytes is length(data) (a bundle's blocks' data, without its frame headers), so a read cuts its batch to a byte budget from
-- the row headers. The table keeps its rowid (no WITHOUT ROWID): its rows are large, and
-- batched deletes select rows by rowid, since SQLite has no DELETE ... LIMIT by default.
--
-- ecg_results holds each analysis's measures as JSON; ecgs.analyses fingerprints them.
--
-- Only ecgs references users (ON DELETE CASCADE, with PRAGMA foreign_keys=ON, which the
-- adapter's DSN sets). Blocks and results carry owner_id instead of a foreign key, so deleting a
-- user never deletes all of their signal data in one transaction; the repository's PurgeOwner
-- removes the orphans afterwards, in batches.
--
-- Timestamp columns are declared DATETIME, exactly, and hold UTC text (00001_init.sql).

-- +goose Up
CREATE TABLE ecgs (
    -- ecg.Key: a UUIDv7 made at upload, so keys sort by upload time.
    ecg_key      TEXT     NOT NULL PRIMARY KEY,
    owner_id     TEXT     NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The client's identifier of the recording (the key itself when it sent none).
    ecg_id       TEXT     NOT NULL,
    recorded_at  DATETIME NOT NULL,
    -- Lead headers as JSON: metadata only, never samples.
    leads        TEXT     NOT NULL,
    -- SHA-256 of the date and the leads (ecg.ECG.Content), 32 bytes.
    content_hash BLOB     NOT NULL,
    status       TEXT     NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
    -- Why the analysis failed, for people; at most 1000 bytes of UTF-8.
    failure      TEXT     NOT NULL DEFAULT '',
    -- Fingerprint of the stored results: sorted "name@version" joined by ","; '' until analysed.
    analyses     TEXT     NOT NULL DEFAULT '',
    created_at   DATETIME NOT NULL,
    -- When the results were stored or the analysis failed; NULL while pending.
    analysed_at  DATETIME
);
-- Decides "the owner already has an ECG with this id", even between concurrent uploads.
CREATE UNIQUE INDEX uq_ecgs_owner_ecg_id ON ecgs (owner_id, ecg_id);
-- Serves "this owner's ECGs, newest first, below a cursor" from the index alone.
CREATE INDEX idx_ecgs_owner_key ON ecgs (owner_id, ecg_key);

CREATE TABLE ecg_blocks (
    ecg_key    TEXT    NOT NULL,
    -- The lead's position in the ECG, from 0, and the block's position in the lead, from 0.
    lead_no    INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    -- Whose ECG this was, so the blocks of a deleted user can be found and purged.
    owner_id   TEXT    NOT NULL,
    samples    INTEGER NOT NULL,
    data_bytes INTEGER NOT NULL,
    data       BLOB    NOT NULL,
    PRIMARY KEY (ecg_key, lead_no, seq)
);
CREATE INDEX idx_ecg_blocks_owner ON ecg_blocks (owner_id);

CREATE TABLE ecg_results (
    ecg_key  TEXT    NOT NULL,
    -- The analysis's stable name and its version when the results were made.
    analysis TEXT    NOT NULL,
    version  INTEGER NOT NULL,
    owner_id TEXT    NOT NULL,
    -- JSON: the measures of each lead, in lead order, each value as its exact decimal text.
    measures TEXT    NOT NULL,
    PRIMARY KEY (ecg_key, analysis)
);
CREATE INDEX idx_ecg_results_owner ON ecg_results (owner_id);

-- +goose Down
DROP TABLE ecg_results;
DROP TABLE ecg_blocks;
DROP TABLE ecgs;
