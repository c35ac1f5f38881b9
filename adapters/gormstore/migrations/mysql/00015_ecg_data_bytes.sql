-- ECGs carry the packed size of their samples (data_bytes: the sum of their ecg_blocks rows'
-- data_bytes, the blocks' packed data without a bundle's frame headers), and the owner index
-- covers it, so an owner's ECG quota (APP_ECG_QUOTA_BYTES) is summed from the index alone:
-- one entry per ECG, never a block row (a 64 MiB upload is hundreds of them, whose clustered
-- rows the owner index of ecg_blocks does not cover). The upload writes it with the ECG;
-- ECGs stored before are measured here from their blocks.

-- +goose Up
ALTER TABLE ecgs ADD COLUMN data_bytes BIGINT NOT NULL DEFAULT 0 AFTER analysed_at;
UPDATE ecgs SET data_bytes = (
    SELECT COALESCE(SUM(b.data_bytes), 0) FROM ecg_blocks b WHERE b.ecg_key = ecgs.ecg_key
);
-- The new index serves the list pages as the old one did; the foreign key on owner_id is served
-- by uq_ecgs_owner_ecg_id.
ALTER TABLE ecgs
    ADD KEY idx_ecgs_owner_key_bytes (owner_id, ecg_key, data_bytes),
    DROP KEY idx_ecgs_owner_key;

-- +goose Down
ALTER TABLE ecgs
    ADD KEY idx_ecgs_owner_key (owner_id, ecg_key),
    DROP KEY idx_ecgs_owner_key_bytes;
ALTER TABLE ecgs DROP COLUMN data_bytes;
