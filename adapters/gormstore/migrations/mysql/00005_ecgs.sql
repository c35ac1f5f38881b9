-- Electrocardiograms (the ecg context): one row per ECG, its samples in packed blocks, and the
-- results of its analyses.
--
-- ecgs holds what describes an ECG, never its samples: leads is the lead headers as JSON (name,
-- sample count, text length and hash of each lead, a few hundred bytes), so a list page or a
-- lookup never touches the signal data.
--
-- ecg_id is the client's identifier, unique per owner and case-sensitive ("a" and "A" are two
-- ECGs): the application admits only A-Z a-z 0-9 . _ -, so the column is ascii with the binary
-- collation, which compares bytes exactly and keeps the unique index at one byte a character.
--
-- ecg_blocks holds the samples, packed (domain/ecg/ecg/block.go): at most 65,536 samples and
-- 256 KiB a block, never one row per sample; a 1,000,000-sample lead is 16 blocks. A row holds
-- one block or, since the adapter learned to bundle them (adapters/ecg/ecggorm/bundle.go), a
-- run of small consecutive blocks up to a block's size, keyed by its last block. data_bytes is
-- LENGTH(data) (for a bundle, its blocks' data without the frame headers), kept beside it so a
-- read can cut its batch to a byte budget from the row headers alone (window sum), without
-- reading any data it will not return: InnoDB keeps large blobs off the row, and LENGTH(data)
-- would fetch them.
--
-- ecg_results holds each analysis's measures of one ECG as JSON, numbers kept as their exact
-- decimal text. ecgs.analyses fingerprints the stored results ("name@version" sorted, joined by
-- ","), so the ECGs whose results are not those of the current analyses are found from ecgs
-- alone, one key range at a time.
--
-- Only ecgs has a foreign key to users (ON DELETE CASCADE). Blocks and results deliberately have
-- none: a user may hold many ECGs of up to 64 MiB of blocks each, and a cascade would delete all
-- of them inside the administrator's deleting transaction. They carry owner_id instead; once the
-- ECG rows are gone, the repository's PurgeOwner removes the orphans in small batches, outside
-- that transaction.
--
-- Timestamps are DATETIME(6) holding UTC, as everywhere (00001_init.sql).

-- +goose Up
CREATE TABLE ecgs (
    -- ecg.Key: a UUIDv7 made at upload, so keys sort by upload time (lists, cursors, jobs).
    ecg_key      VARCHAR(36)   NOT NULL,
    owner_id     VARCHAR(36)   NOT NULL,
    -- The client's identifier of the recording (the key itself when it sent none).
    ecg_id       VARCHAR(64)   CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    recorded_at  DATETIME(6)   NOT NULL,
    -- Lead headers as JSON: metadata only, never samples.
    leads        TEXT          NOT NULL,
    -- SHA-256 of the date and the leads (ecg.ECG.Content): tells a retried upload from a
    -- different recording under the same id.
    content_hash BINARY(32)    NOT NULL,
    status       VARCHAR(16)   NOT NULL,
    -- Why the analysis failed, for people; at most 1000 bytes of UTF-8.
    failure      VARCHAR(1000) NOT NULL DEFAULT '',
    -- Fingerprint of the stored results: sorted "name@version" joined by ","; '' until analysed.
    analyses     VARCHAR(1000) NOT NULL DEFAULT '',
    created_at   DATETIME(6)   NOT NULL,
    -- When the results were stored or the analysis failed; NULL while pending.
    analysed_at  DATETIME(6)   NULL,
    PRIMARY KEY (ecg_key),
    -- Decides "the owner already has an ECG with this id", even between concurrent uploads. It
    -- also serves the foreign key on owner_id.
    UNIQUE KEY uq_ecgs_owner_ecg_id (owner_id, ecg_id),
    -- Serves "this owner's ECGs, newest first, below a cursor" from the index alone.
    KEY idx_ecgs_owner_key (owner_id, ecg_key),
    CONSTRAINT fk_ecgs_owner FOREIGN KEY (owner_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT chk_ecgs_status CHECK (status IN ('pending', 'done', 'failed'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE ecg_blocks (
    ecg_key    VARCHAR(36) NOT NULL,
    -- The lead's position in the ECG, from 0, and the block's position in the lead, from 0.
    lead_no    SMALLINT    NOT NULL,
    seq        INT         NOT NULL,
    -- Whose ECG this was, so the blocks of a deleted user can be found and purged.
    owner_id   VARCHAR(36) NOT NULL,
    samples    INT         NOT NULL,
    data_bytes INT         NOT NULL,
    -- At most about 256 KiB (ecg.MaxBlockBytes); MEDIUMBLOB because BLOB stops at 64 KiB.
    data       MEDIUMBLOB  NOT NULL,
    -- The clustered index keeps an ECG's blocks together, in reading order.
    PRIMARY KEY (ecg_key, lead_no, seq),
    KEY idx_ecg_blocks_owner (owner_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE ecg_results (
    ecg_key  VARCHAR(36) NOT NULL,
    -- The analysis's stable name and its version when the results were made.
    analysis VARCHAR(64) NOT NULL,
    version  INT         NOT NULL,
    owner_id VARCHAR(36) NOT NULL,
    -- JSON: the measures of each lead, in lead order, each value as its exact decimal text.
    measures MEDIUMTEXT  NOT NULL,
    PRIMARY KEY (ecg_key, analysis),
    KEY idx_ecg_results_owner (owner_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE ecg_results;
DROP TABLE ecg_blocks;
DROP TABLE ecgs;
