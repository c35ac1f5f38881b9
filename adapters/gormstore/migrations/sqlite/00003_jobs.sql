-- Durable background jobs (ports.JobQueue and ports.JobSource).
--
-- SQLite has a single writer: a claim runs in a BEGIN IMMEDIATE transaction (the adapter's DSN
-- sets _txlock=immediate), which serialises claimers, so no row locks are needed to keep two of
-- them from taking the same job.
--
-- The table stays small: a completed job is deleted at once (the data it concerns records the
-- outcome), and a failed job is kept only until the workers purge it (APP_JOBS_FAILED_RETENTION).

-- +goose Up
CREATE TABLE jobs (
    id           TEXT     NOT NULL PRIMARY KEY,
    -- Selects the handler, such as "user.cleanup".
    kind         TEXT     NOT NULL,
    -- At most 64 KiB (ports.MaxJobPayloadBytes), kept byte for byte.
    payload      BLOB     NOT NULL,
    -- queued (waiting for due_at), running (claimed) or failed (for good). Completed jobs are
    -- deleted, so there is no done state.
    status       TEXT     NOT NULL CHECK (status IN ('queued', 'running', 'failed')),
    -- Claims counted so far; a job handed back at shutdown does not count.
    attempts     INTEGER  NOT NULL DEFAULT 0,
    max_attempts INTEGER  NOT NULL,
    -- When the job is next claimable: for a queued job the time it may run, for a running job
    -- the end of its lease (past it, the worker is presumed dead and the job is claimed again),
    -- NULL for a failed job, which is never claimed.
    due_at       DATETIME,
    -- Identifies the current claim; only its holder can settle the job. NULL unless running.
    lease_token  TEXT,
    -- The worker that claimed the job last, for operators.
    worker       TEXT,
    -- Why the last attempt failed (at most 2000 bytes, ports.MaxJobReasonBytes).
    last_error   TEXT,
    created_at   DATETIME NOT NULL,
    updated_at   DATETIME NOT NULL
);
-- The claim: due_at <= now, oldest first. Failed jobs (NULL) fall outside every range.
CREATE INDEX idx_jobs_due ON jobs (due_at);
-- Stats by status and kind read this index alone; the purge finds failed jobs through it.
CREATE INDEX idx_jobs_status_kind ON jobs (status, kind, due_at);

-- +goose Down
DROP TABLE jobs;
