-- Durable background jobs (ports.JobQueue and ports.JobSource).
--
-- A job is inserted in the same transaction as the data it concerns. Workers claim due jobs with
-- SELECT ... FOR UPDATE SKIP LOCKED through idx_jobs_due, so claimers on several instances never
-- wait for one another's rows and never take the same job.
--
-- The table stays small: a completed job is deleted at once (the data it concerns records the
-- outcome), and a failed job is kept only until the workers purge it (APP_JOBS_FAILED_RETENTION).

-- +goose Up
CREATE TABLE jobs (
    id           VARCHAR(36)  NOT NULL,
    -- Selects the handler, such as "user.cleanup".
    kind         VARCHAR(64)  NOT NULL,
    -- At most 64 KiB (ports.MaxJobPayloadBytes); MEDIUMBLOB because BLOB stops one byte short.
    payload      MEDIUMBLOB   NOT NULL,
    -- queued (waiting for due_at), running (claimed) or failed (for good). Completed jobs are
    -- deleted, so there is no done state.
    status       VARCHAR(16)  NOT NULL,
    -- Claims counted so far; a job handed back at shutdown does not count.
    attempts     INT          NOT NULL DEFAULT 0,
    max_attempts INT          NOT NULL,
    -- When the job is next claimable: for a queued job the time it may run, for a running job
    -- the end of its lease (past it, the worker is presumed dead and the job is claimed again),
    -- NULL for a failed job, which is never claimed. One column for both cases lets one index
    -- range serve every claim.
    due_at       DATETIME(6)  NULL,
    -- Identifies the current claim; only its holder can settle the job. NULL unless running.
    lease_token  VARCHAR(36)  NULL,
    -- The worker that claimed the job last, for operators.
    worker       VARCHAR(255) NULL,
    -- Why the last attempt failed (at most 2000 bytes, ports.MaxJobReasonBytes).
    last_error   TEXT         NULL,
    created_at   DATETIME(6)  NOT NULL,
    updated_at   DATETIME(6)  NOT NULL,
    PRIMARY KEY (id),
    -- The claim: due_at <= now, oldest first. Failed jobs (NULL) fall outside every range.
    KEY idx_jobs_due (due_at),
    -- Stats by status and kind read this index alone; the purge finds failed jobs through it.
    KEY idx_jobs_status_kind (status, kind, due_at),
    CONSTRAINT chk_jobs_status CHECK (status IN ('queued', 'running', 'failed'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE jobs;
