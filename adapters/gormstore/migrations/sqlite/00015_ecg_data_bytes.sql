-- ECGs carry the packed size of their samples (the sum of their blocks' data_bytes), and the
-- owner index covers it, so an owner's ECG quota is summed from the index alone. The MySQL
-- migration of the same number explains it. ECGs stored before are measured from their blocks.

-- +goose Up
ALTER TABLE ecgs ADD COLUMN data_bytes INTEGER NOT NULL DEFAULT 0;
UPDATE ecgs SET data_bytes = (
    SELECT COALESCE(SUM(b.data_bytes), 0) FROM ecg_blocks b WHERE b.ecg_key = ecgs.ecg_key
);
CREATE INDEX idx_ecgs_owner_key_bytes ON ecgs (owner_id, ecg_key, data_bytes);
DROP INDEX idx_ecgs_owner_key;

-- +goose Down
CREATE INDEX idx_ecgs_owner_key ON ecgs (owner_id, ecg_key);
DROP INDEX idx_ecgs_owner_key_bytes;
ALTER TABLE ecgs DROP COLUMN data_bytes;
