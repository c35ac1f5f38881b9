package gormstore

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"time"

	"gorm.io/gorm"

	"github.com/acme/postsvc/ports"
)

// Job states as stored in jobs.status.
const (
	jobQueued  = string(ports.JobQueued)
	jobRunning = string(ports.JobRunning)
	jobFailed  = string(ports.JobFailed)
)

// maxWorkerBytes bounds JobClaim.Worker to the jobs.worker column.
const maxWorkerBytes = 255

// purgeBatch bounds the rows one purge statement deletes, so a large backlog of failed jobs is
// removed in short statements that hold few locks rather than in one long one.
const purgeBatch = 500

// spentLeaseReason is recorded on a job whose last attempt never settled: the worker holding
// it stopped renewing its lease. Such a job is handed out Spent, to be failed rather than run
// again, so that a job that kills its worker (out of memory, say) cannot take down instance
// after instance.
const spentLeaseReason = "the worker running its last attempt stopped renewing the lease (it was killed, crashed or lost the database)"

// JobQueue implements ports.JobQueue and ports.JobSource on the jobs table; see the migration
// 00003_jobs.sql for the meaning of each column.
//
// On MySQL and MariaDB a claim selects due rows with FOR UPDATE SKIP LOCKED and marks them
// running in the same short transaction, so concurrent claimers on any number of instances
// each take different rows and never wait for one another. The transaction runs at READ
// COMMITTED: under MySQL's default REPEATABLE READ the range scan would also take gap locks,
// which would make enqueues in request transactions wait for claims. On SQLite the claim runs
// in a BEGIN IMMEDIATE transaction, which already excludes every other writer.
//
// Every time, written and compared, comes from the service's clock, so that tests can expire
// leases with a fake clock; instances sharing a database must therefore keep their clocks in
// step (NTP) to well within a lease.
type JobQueue struct {
	db    *gorm.DB
	clock ports.Clock
	ids   ports.IDGenerator
	// claimTx is the options of the claim transaction, and claimQuery its select, which on
	// MySQL locks the rows it returns.
	claimTx    []*sql.TxOptions
	claimQuery string
	onEnqueue  atomic.Pointer[func(kind string)]
}

var (
	_ ports.JobQueue  = (*JobQueue)(nil)
	_ ports.JobSource = (*JobQueue)(nil)
)

// NewJobQueue binds the job queue to the pool that Open returned.
func NewJobQueue(db *gorm.DB, clock ports.Clock, ids ports.IDGenerator) *JobQueue {
	q := &JobQueue{db: db, clock: clock, ids: ids, claimQuery: fmt.Sprintf(claimSQL, "")}
	if db.Name() == "mysql" {
		q.claimTx = []*sql.TxOptions{{Isolation: sql.LevelReadCommitted}}
		q.claimQuery = fmt.Sprintf(claimSQL, mysqlClaimIndexHint) + " FOR UPDATE SKIP LOCKED"
	}
	return q
}

// OnEnqueue registers f to be called with the job's kind after each successful Enqueue,
// typically the workers' Notify, so that a worker in this process looks for work at once
// instead of at its next poll. The call happens before the caller's transaction commits, so f
// must only wake a poller that keeps looking for a short while; it must not block.
func (q *JobQueue) OnEnqueue(f func(kind string)) { q.onEnqueue.Store(&f) }

// Enqueue inserts the job in scope's transaction (or on its own on the pool's scope).
func (q *JobQueue) Enqueue(ctx context.Context, scope ports.Scope, job ports.NewJob) (string, error) {
	if err := job.Validate(); err != nil {
		return "", err
	}
	db, err := DB(scope)
	if err != nil {
		return "", err
	}
	now := DBTime(q.clock.Now())
	runAt := now
	if !job.RunAt.IsZero() {
		runAt = DBTime(job.RunAt)
	}
	maxAttempts := job.MaxAttempts
	if maxAttempts == 0 {
		maxAttempts = ports.DefaultJobMaxAttempts
	}
	payload := job.Payload
	if payload == nil {
		// The column is NOT NULL: an absent payload is an empty one.
		payload = []byte{}
	}
	id := q.ids.NewID()
	err = db.WithContext(ctx).Exec(`INSERT INTO jobs
		(id, kind, payload, status, attempts, max_attempts, due_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?)`,
		id, job.Kind, payload, jobQueued, maxAttempts, runAt, now, now).Error
	if err != nil {
		return "", fmt.Errorf("gormstore: enqueue %s job: %w", job.Kind, MapErr(err))
	}
	if f := q.onEnqueue.Load(); f != nil {
		(*f)(job.Kind)
	}
	return id, nil
}

// claimSQL selects due jobs, oldest due first, through idx_jobs_due, whose order (due_at, then
// the primary key) is the ORDER BY: no sort, so the scan (and, on MySQL, the locking) stops
// after LIMIT rows. %s is where MySQL's index hint goes.
const claimSQL = `SELECT id, kind, payload, status, attempts, max_attempts, last_error, created_at
FROM jobs%s
WHERE due_at <= ? AND kind IN ?
ORDER BY due_at, id
LIMIT ?`

// mysqlClaimIndexHint pins the claim to idx_jobs_due. Left to itself, MariaDB reads a small
// table whole and sorts it, and a locking read that sorts locks every due row before LIMIT
// applies: one claimer would then hold all the due jobs for the length of its transaction, and
// the others, skipping locked rows, would find nothing, so instances would take turns instead of
// sharing the work.
const mysqlClaimIndexHint = " FORCE INDEX (idx_jobs_due)"

// claimRow is a row read by claimSQL.
type claimRow struct {
	ID          string    `gorm:"column:id"`
	Kind        string    `gorm:"column:kind"`
	Payload     []byte    `gorm:"column:payload"`
	Status      string    `gorm:"column:status"`
	Attempts    int       `gorm:"column:attempts"`
	MaxAttempts int       `gorm:"column:max_attempts"`
	LastError   *string   `gorm:"column:last_error"`
	CreatedAt   time.Time `gorm:"column:created_at"`
}

// Claim leases up to c.Limit due jobs to c.Worker; see ports.JobSource.
func (q *JobQueue) Claim(ctx context.Context, c ports.JobClaim) ([]ports.Job, error) {
	switch {
	case c.Worker == "" || len(c.Worker) > maxWorkerBytes:
		return nil, fmt.Errorf("gormstore: claim: worker name must be 1 to %d bytes", maxWorkerBytes)
	case c.Limit < 1:
		return nil, fmt.Errorf("gormstore: claim: limit must be at least 1, got %d", c.Limit)
	case c.Lease <= 0:
		return nil, fmt.Errorf("gormstore: claim: lease must be positive, got %s", c.Lease)
	case len(c.Kinds) == 0:
		return nil, nil
	}
	var (
		jobs []ports.Job
		err  error
	)
	// A claim that InnoDB picked as a deadlock victim was rolled back whole and can run again
	// at once, as in UnitOfWork.Do.
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		jobs, err = q.claimOnce(ctx, c)
		if !isDeadlock(err) || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("gormstore: claim jobs: %w", interrupted(ctx, MapErr(err)))
	}
	return jobs, nil
}

// dueSQL tells whether any job is due, without locking anything.
const dueSQL = `SELECT id FROM jobs WHERE due_at <= ? AND kind IN ? LIMIT 1`

func (q *JobQueue) claimOnce(ctx context.Context, c ports.JobClaim) ([]ports.Job, error) {
	now := DBTime(q.clock.Now())
	// Idle workers poll every second or so. Looking first with a plain read keeps those polls
	// to one statement, and on SQLite keeps them from taking the database's single write lock
	// (BEGIN IMMEDIATE) that request transactions wait for.
	var due []string
	if err := q.db.WithContext(ctx).Raw(dueSQL, now, c.Kinds).Scan(&due).Error; err != nil {
		return nil, err
	}
	if len(due) == 0 {
		return nil, nil
	}
	expires := DBTime(now.Add(c.Lease))
	lease := q.ids.NewID()
	var jobs []ports.Job
	err := q.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var rows []claimRow
		if err := tx.Raw(q.claimQuery, now, c.Kinds, c.Limit).Scan(&rows).Error; err != nil {
			return err
		}
		var take, spent []string
		for _, r := range rows {
			lastError := ""
			if r.LastError != nil {
				lastError = *r.LastError
			}
			job := ports.Job{
				ID: r.ID, Kind: r.Kind, Payload: r.Payload,
				Attempt: r.Attempts + 1, MaxAttempts: r.MaxAttempts,
				CreatedAt: r.CreatedAt.UTC(), LastError: lastError,
				Lease: lease, LeaseExpires: expires,
			}
			if r.Attempts >= r.MaxAttempts {
				// Handed out only to be given up (ports.Job.Spent), its attempts unchanged.
				spent = append(spent, r.ID)
				job.Attempt, job.Spent = r.Attempts, true
				if r.Status == jobRunning {
					job.LastError = spentLeaseReason
				}
			} else {
				take = append(take, r.ID)
			}
			jobs = append(jobs, job)
		}
		if len(spent) > 0 {
			// A queued job with no attempts left was retried on its last attempt and keeps
			// that attempt's reason; a running one was abandoned by a dead worker. last_error
			// is assigned before status because MySQL evaluates assignments from left to
			// right, each seeing the ones before it.
			err := tx.Exec(`UPDATE jobs SET last_error = CASE WHEN status = ? THEN ? ELSE last_error END,
				status = ?, due_at = ?, lease_token = ?, worker = ?, updated_at = ?
				WHERE id IN ?`, jobRunning, spentLeaseReason, jobRunning, expires, lease, c.Worker, now, spent).Error
			if err != nil {
				return err
			}
		}
		if len(take) > 0 {
			err := tx.Exec(`UPDATE jobs SET status = ?, attempts = attempts + 1, due_at = ?,
				lease_token = ?, worker = ?, updated_at = ?
				WHERE id IN ?`, jobRunning, expires, lease, c.Worker, now, take).Error
			if err != nil {
				return err
			}
		}
		return nil
	}, q.claimTx...)
	if err != nil {
		return nil, err
	}
	return jobs, nil
}

// ReleaseLeases makes every running job due now, without waiting for its lease to run out,
// and returns how many it released. Only a process that knows that no other one runs jobs on
// the database may call it: the SQLite server at start, which holds the database's
// single-process lock (LockSQLite), so that the process that held the leases is dead. Without
// it, a job that a killed process was running waited the whole APP_JOBS_LEASE after the
// restart (an ECG answered 202 stayed pending for 30 s). The attempts are left as they are:
// the interrupted attempt counts, as when a lease runs out.
func (q *JobQueue) ReleaseLeases(ctx context.Context) (int64, error) {
	now := DBTime(q.clock.Now())
	res := q.db.WithContext(ctx).Exec(`UPDATE jobs SET due_at = ? WHERE status = ? AND due_at > ?`, now, jobRunning, now)
	if res.Error != nil {
		return 0, fmt.Errorf("gormstore: release the leases of running jobs: %w", MapErr(res.Error))
	}
	return res.RowsAffected, nil
}

// held runs an update of the job that applies only while job.Lease still holds it, and
// reports ErrJobLeaseLost when it does not. set assigns the columns; its arguments come first.
func (q *JobQueue) held(ctx context.Context, what string, job ports.Job, set string, args ...any) error {
	args = append(args, job.ID, job.Lease, jobRunning)
	res := q.db.WithContext(ctx).Exec(`UPDATE jobs SET `+set+` WHERE id = ? AND lease_token = ? AND status = ?`, args...)
	if res.Error != nil {
		return fmt.Errorf("gormstore: %s job %s: %w", what, job.ID, MapErr(res.Error))
	}
	// MySQL reports rows matched rather than changed (clientFoundRows), as SQLite does, so
	// an extension that sets the same expiry twice still counts.
	if res.RowsAffected == 0 {
		return fmt.Errorf("gormstore: %s job %s: %w", what, job.ID, ports.ErrJobLeaseLost)
	}
	return nil
}

// Extend renews job's lease; see ports.JobSource.
func (q *JobQueue) Extend(ctx context.Context, job ports.Job, lease time.Duration) (time.Time, error) {
	if lease <= 0 {
		return time.Time{}, fmt.Errorf("gormstore: extend: lease must be positive, got %s", lease)
	}
	now := DBTime(q.clock.Now())
	expires := DBTime(now.Add(lease))
	if err := q.held(ctx, "extend", job, "due_at = ?, updated_at = ?", expires, now); err != nil {
		return time.Time{}, err
	}
	return expires, nil
}

// Complete deletes the job: once its work is done, the data it concerns is the record.
func (q *JobQueue) Complete(ctx context.Context, job ports.Job) error {
	res := q.db.WithContext(ctx).Exec(`DELETE FROM jobs WHERE id = ? AND lease_token = ? AND status = ?`,
		job.ID, job.Lease, jobRunning)
	if res.Error != nil {
		return fmt.Errorf("gormstore: complete job %s: %w", job.ID, MapErr(res.Error))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("gormstore: complete job %s: %w", job.ID, ports.ErrJobLeaseLost)
	}
	return nil
}

// Retry queues the job again, due at at; see ports.JobSource.
func (q *JobQueue) Retry(ctx context.Context, job ports.Job, at time.Time, reason string) error {
	now := DBTime(q.clock.Now())
	due := now
	if !at.IsZero() {
		due = DBTime(at)
	}
	return q.held(ctx, "retry", job, "status = ?, due_at = ?, lease_token = NULL, last_error = ?, updated_at = ?",
		jobQueued, due, ports.CleanJobReason(reason), now)
}

// Fail marks the job failed for good; see ports.JobSource.
func (q *JobQueue) Fail(ctx context.Context, job ports.Job, reason string) error {
	now := DBTime(q.clock.Now())
	return q.held(ctx, "fail", job, "status = ?, due_at = NULL, lease_token = NULL, last_error = ?, updated_at = ?",
		jobFailed, ports.CleanJobReason(reason), now)
}

// Release hands the job back at once without counting the attempt; see ports.JobSource.
func (q *JobQueue) Release(ctx context.Context, job ports.Job) error {
	now := DBTime(q.clock.Now())
	return q.held(ctx, "release", job, "status = ?, attempts = attempts - 1, due_at = ?, lease_token = NULL, updated_at = ?",
		jobQueued, now, now)
}

// statsSQL counts jobs by status and kind from idx_jobs_status_kind alone, with the oldest due
// time among queued jobs that are due.
const statsSQL = `SELECT status, kind, COUNT(*), MIN(CASE WHEN status = ? AND due_at <= ? THEN due_at END)
FROM jobs
GROUP BY status, kind`

// Stats counts jobs by kind; see ports.JobSource.
func (q *JobQueue) Stats(ctx context.Context) ([]ports.JobStats, error) {
	now := DBTime(q.clock.Now())
	rows, err := q.db.WithContext(ctx).Raw(statsSQL, jobQueued, now).Rows()
	if err != nil {
		return nil, fmt.Errorf("gormstore: job stats: %w", MapErr(err))
	}
	defer rows.Close()
	byKind := map[string]*ports.JobStats{}
	var order []string
	for rows.Next() {
		var (
			status, kind string
			n            int64
			oldest       any
		)
		if err := rows.Scan(&status, &kind, &n, &oldest); err != nil {
			return nil, fmt.Errorf("gormstore: job stats: %w", MapErr(err))
		}
		s := byKind[kind]
		if s == nil {
			s = &ports.JobStats{Kind: kind}
			byKind[kind] = s
			order = append(order, kind)
		}
		switch status {
		case jobQueued:
			s.Queued = n
			if oldest != nil {
				t, err := aggregateTime(oldest)
				if err != nil {
					return nil, fmt.Errorf("gormstore: job stats: %w", err)
				}
				s.OldestQueuedAge = max(now.Sub(t), 0)
			}
		case jobRunning:
			s.Running = n
		case jobFailed:
			s.Failed = n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("gormstore: job stats: %w", MapErr(err))
	}
	out := make([]ports.JobStats, 0, len(order))
	for _, k := range order {
		out = append(out, *byKind[k])
	}
	return out, nil
}

// sqliteTimeLayouts are the forms in which SQLite hands back a timestamp that an aggregate
// computed: the text the driver wrote, since an expression has no declared type for the
// driver to parse it by.
var sqliteTimeLayouts = []string{
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999",
	time.RFC3339Nano,
}

// aggregateTime reads a timestamp computed by an aggregate: a time.Time on MySQL (parseTime),
// text on SQLite.
func aggregateTime(v any) (time.Time, error) {
	var s string
	switch v := v.(type) {
	case time.Time:
		return v.UTC(), nil
	case string:
		s = v
	case []byte:
		s = string(v)
	default:
		return time.Time{}, fmt.Errorf("unexpected timestamp of type %T", v)
	}
	for _, layout := range sqliteTimeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("unreadable timestamp %q", s)
}

// jobInfoRow is a row read by Lookup.
type jobInfoRow struct {
	ID          string     `gorm:"column:id"`
	Kind        string     `gorm:"column:kind"`
	Status      string     `gorm:"column:status"`
	Attempts    int        `gorm:"column:attempts"`
	MaxAttempts int        `gorm:"column:max_attempts"`
	LastError   *string    `gorm:"column:last_error"`
	Worker      *string    `gorm:"column:worker"`
	DueAt       *time.Time `gorm:"column:due_at"`
	CreatedAt   time.Time  `gorm:"column:created_at"`
	UpdatedAt   time.Time  `gorm:"column:updated_at"`
}

// Lookup returns the stored state of a job; see ports.JobSource.
func (q *JobQueue) Lookup(ctx context.Context, id string) (ports.JobInfo, error) {
	var rows []jobInfoRow
	err := q.db.WithContext(ctx).Raw(`SELECT id, kind, status, attempts, max_attempts, last_error, worker,
		due_at, created_at, updated_at FROM jobs WHERE id = ?`, id).Scan(&rows).Error
	if err != nil {
		return ports.JobInfo{}, fmt.Errorf("gormstore: look up job %s: %w", id, MapErr(err))
	}
	if len(rows) == 0 {
		return ports.JobInfo{}, fmt.Errorf("gormstore: job %s: %w", id, ports.ErrJobNotFound)
	}
	r := rows[0]
	info := ports.JobInfo{
		ID: r.ID, Kind: r.Kind, Status: ports.JobStatus(r.Status),
		Attempts: r.Attempts, MaxAttempts: r.MaxAttempts,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
	if r.LastError != nil {
		info.LastError = *r.LastError
	}
	if r.Worker != nil {
		info.Worker = *r.Worker
	}
	if r.DueAt != nil {
		info.DueAt = r.DueAt.UTC()
	}
	return info, nil
}

// PurgeFailed deletes failed jobs last updated before before; see ports.JobSource.
func (q *JobQueue) PurgeFailed(ctx context.Context, before time.Time) (int, error) {
	cutoff := DBTime(before)
	total := 0
	for {
		var ids []string
		err := q.db.WithContext(ctx).Raw(`SELECT id FROM jobs WHERE status = ? AND updated_at < ? LIMIT ?`,
			jobFailed, cutoff, purgeBatch).Scan(&ids).Error
		if err != nil {
			return total, fmt.Errorf("gormstore: purge failed jobs: %w", MapErr(err))
		}
		if len(ids) == 0 {
			return total, nil
		}
		res := q.db.WithContext(ctx).Exec(`DELETE FROM jobs WHERE id IN ? AND status = ?`, ids, jobFailed)
		if res.Error != nil {
			return total, fmt.Errorf("gormstore: purge failed jobs: %w", MapErr(res.Error))
		}
		total += int(res.RowsAffected)
		if len(ids) < purgeBatch {
			return total, nil
		}
	}
}
