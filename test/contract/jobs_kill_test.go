package contract_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/adapters/system"
	"github.com/acme/postsvc/adapters/worker"
	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/test/fakes"
	"github.com/acme/postsvc/test/testdb"
)

// The child process of TestJobsWorkerKilledMidJob reads what to do from these variables.
const (
	envKillChild  = "JOBS_KILL_CHILD"
	envKillDriver = "JOBS_KILL_DRIVER"
	envKillDSN    = "JOBS_KILL_DSN"
	envKillPoint  = "JOBS_KILL_POINT"
)

// Where the child is killed: before its handler's effect, or after the effect and before the
// job is settled, the window in which only an idempotent effect prevents a double effect.
const (
	killBeforeEffect = "before-effect"
	killAfterEffect  = "after-effect"
)

const (
	killKind  = "kill.test"
	killLease = 2 * time.Second
)

// TestJobsWorkerKilledMidJob runs a worker in a separate process, SIGKILLs it while it holds a
// job (before the job's effect, and after it but before the job is settled), and checks that a
// worker in this process takes the job over only once the dead worker's lease has run out,
// runs it to completion, and that the job took effect exactly once and ran no third time.
func TestJobsWorkerKilledMidJob(t *testing.T) {
	if os.Getenv(envKillChild) == "1" {
		runKilledChild(t)
		return
	}
	for _, driver := range []string{config.DriverSQLite, config.DriverMySQL} {
		for _, point := range []string{killBeforeEffect, killAfterEffect} {
			t.Run(driver+"/"+point, func(t *testing.T) {
				t.Parallel()
				testKilledWorker(t, driver, point)
			})
		}
	}
}

func testKilledWorker(t *testing.T, driver, point string) {
	ctx := t.Context()
	cfg := jobsDatabase(t, driver)
	db := openPool(t, cfg)
	testdb.Migrate(t, db, driver)
	for _, stmt := range []string{
		`CREATE TABLE job_runs (job_id VARCHAR(36) NOT NULL, attempt INT NOT NULL, pid INT NOT NULL)`,
		`CREATE TABLE job_effects (job_id VARCHAR(36) NOT NULL PRIMARY KEY, pid INT NOT NULL)`,
	} {
		if err := db.Exec(stmt).Error; err != nil {
			t.Fatal(err)
		}
	}
	queue := gormstore.NewJobQueue(db, system.NewClock(), system.NewIDs())
	id, err := queue.Enqueue(ctx, gormstore.NewUnitOfWork(db).Pool(), ports.NewJob{Kind: killKind, Payload: []byte("the job's own data")})
	if err != nil {
		t.Fatal(err)
	}

	child := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestJobsWorkerKilledMidJob$", "-test.v")
	child.Env = append(os.Environ(),
		envKillChild+"=1", envKillDriver+"="+driver, envKillDSN+"="+cfg.DSN, envKillPoint+"="+point)
	var out fakes.LogBuffer
	child.Stdout, child.Stderr = &out, &out
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	t.Cleanup(func() {
		_ = child.Process.Kill()
		if t.Failed() {
			t.Logf("child output:\n%s", out.String())
		}
	})

	// Wait until the child is mid-job: it has run the handler (and, for after-effect, made the
	// effect) and holds the job.
	deadline := time.Now().Add(30 * time.Second)
	for !childIsMidJob(t, db, id, point) {
		select {
		case err := <-exited:
			t.Fatalf("the child exited before it was killed: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the child never got to the middle of the job")
		}
		time.Sleep(20 * time.Millisecond)
	}
	info, err := queue.Lookup(ctx, id)
	if err != nil || info.Status != ports.JobRunning || info.Attempts != 1 {
		t.Fatalf("the child's job: %+v, %v; want it running on its first attempt", info, err)
	}
	if err := child.Process.Kill(); err != nil { // SIGKILL: nothing runs in the child after it
		t.Fatal(err)
	}
	killed := time.Now()
	if err := <-exited; err == nil {
		t.Fatal("the child exited cleanly; it should have been killed")
	}

	// A worker of this process takes the job over once the lease has run out.
	var takenOver time.Time
	var mu sync.Mutex
	r, err := worker.New(queue, system.NewClock(), slog.New(slog.NewTextHandler(io.Discard, nil)),
		worker.Settings{Workers: 1, Lease: killLease, PollInterval: 50 * time.Millisecond, ShutdownGrace: time.Second},
		map[string]worker.Handler{killKind: func(ctx context.Context, job ports.Job) error {
			mu.Lock()
			if takenOver.IsZero() {
				takenOver = time.Now()
			}
			mu.Unlock()
			return killHandler(db, false)(ctx, job)
		}})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() { _ = r.Run(runCtx); close(stopped) }()
	defer func() { stop(); <-stopped }()
	deadline = time.Now().Add(30 * time.Second)
	for {
		_, err := queue.Lookup(ctx, id)
		if errors.Is(err, ports.ErrJobNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job was not completed after the kill: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Give a wrongly repeated run the time to show up.
	time.Sleep(300 * time.Millisecond)

	mu.Lock()
	waited := takenOver.Sub(killed)
	mu.Unlock()
	// The child's last heartbeat came at most a third of a lease before the kill, so its lease
	// lasted at least two thirds of one after it.
	t.Logf("the job was taken over %s after the kill", waited)
	if waited < killLease*2/3-100*time.Millisecond {
		t.Errorf("the job was taken over %s after the kill, before the dead worker's lease ran out", waited)
	}
	var runs []struct {
		Attempt int `gorm:"column:attempt"`
		PID     int `gorm:"column:pid"`
	}
	if err := db.Raw(`SELECT attempt, pid FROM job_runs WHERE job_id = ? ORDER BY attempt`, id).Scan(&runs).Error; err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].Attempt != 1 || runs[0].PID != child.Process.Pid || runs[1].Attempt != 2 || runs[1].PID != os.Getpid() {
		t.Errorf("runs %+v, want attempt 1 in the child (pid %d) and attempt 2 here (pid %d)", runs, child.Process.Pid, os.Getpid())
	}
	var effects []struct {
		PID int `gorm:"column:pid"`
	}
	if err := db.Raw(`SELECT pid FROM job_effects WHERE job_id = ?`, id).Scan(&effects).Error; err != nil {
		t.Fatal(err)
	}
	wantPID := os.Getpid()
	if point == killAfterEffect {
		wantPID = child.Process.Pid
	}
	if len(effects) != 1 || effects[0].PID != wantPID {
		t.Errorf("effects %+v, want exactly one, made by pid %d", effects, wantPID)
	}
}

// childIsMidJob reports whether the child has got as far into the job as point.
func childIsMidJob(t *testing.T, db *gorm.DB, id, point string) bool {
	t.Helper()
	table := "job_runs"
	if point == killAfterEffect {
		table = "job_effects"
	}
	var n int64
	if err := db.Raw(`SELECT COUNT(*) FROM `+table+` WHERE job_id = ?`, id).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// killHandler records the run, makes the job's effect idempotently (a second attempt after an
// effect that was made finds it and changes nothing), and, in the child, then hangs until the
// process is killed.
func killHandler(db *gorm.DB, hang bool) worker.Handler {
	insertIgnore := "INSERT OR IGNORE"
	if db.Name() == "mysql" {
		insertIgnore = "INSERT IGNORE"
	}
	return func(ctx context.Context, job ports.Job) error {
		pid := os.Getpid()
		tx := db.WithContext(ctx)
		if err := tx.Exec(`INSERT INTO job_runs (job_id, attempt, pid) VALUES (?, ?, ?)`, job.ID, job.Attempt, pid).Error; err != nil {
			return err
		}
		if hang && os.Getenv(envKillPoint) == killBeforeEffect {
			<-ctx.Done()
			return ctx.Err()
		}
		if err := tx.Exec(insertIgnore+` INTO job_effects (job_id, pid) VALUES (?, ?)`, job.ID, pid).Error; err != nil {
			return err
		}
		if hang {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}
}

// runKilledChild is the child process: a worker that runs the job and hangs in it until the
// parent kills the process. It gives up after a minute so that it cannot outlive a parent that
// died first.
func runKilledChild(t *testing.T) {
	db, cleanup, err := gormstore.Open(config.Database{
		Driver: os.Getenv(envKillDriver), DSN: os.Getenv(envKillDSN), MaxOpenConns: 4, MaxIdleConns: 4,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	queue := gormstore.NewJobQueue(db, system.NewClock(), system.NewIDs())
	r, err := worker.New(queue, system.NewClock(), slog.New(slog.NewTextHandler(os.Stderr, nil)),
		worker.Settings{Workers: 1, Lease: killLease, PollInterval: 50 * time.Millisecond, ShutdownGrace: time.Second},
		map[string]worker.Handler{killKind: killHandler(db, true)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = r.Run(ctx)
	t.Fatal("the child was not killed within a minute")
}
