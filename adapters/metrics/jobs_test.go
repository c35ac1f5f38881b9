package metrics_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/acme/postsvc/adapters/metrics"
)

// TestJobMetrics scrapes the job counts by kind, with a zero series for a kind that has a
// handler but no jobs.
func TestJobMetrics(t *testing.T) {
	var deadline bool
	m, err := metrics.New(metrics.Sources{
		Jobs: func(ctx context.Context) ([]metrics.JobStats, error) {
			_, deadline = ctx.Deadline()
			return []metrics.JobStats{
				{Kind: "ecg.analyse", Queued: 7, Running: 2, Failed: 1, OldestQueuedAge: 1500 * time.Millisecond},
				{Kind: "user.cleanup", Failed: 3},
			}, nil
		},
		JobKinds: []string{"ecg.analyse", "media.sweep"},
	})
	if err != nil {
		t.Fatal(err)
	}
	text := scrape(t, m.Handler())
	assertLines(t, text,
		`postsvc_jobs_stats_up 1`,
		`postsvc_jobs_queued{kind="ecg.analyse"} 7`,
		`postsvc_jobs_running{kind="ecg.analyse"} 2`,
		`postsvc_jobs_failed{kind="ecg.analyse"} 1`,
		`postsvc_jobs_oldest_queued_age_seconds{kind="ecg.analyse"} 1.5`,
		`postsvc_jobs_failed{kind="user.cleanup"} 3`,
		`postsvc_jobs_queued{kind="user.cleanup"} 0`,
		`postsvc_jobs_queued{kind="media.sweep"} 0`,
		`postsvc_jobs_oldest_queued_age_seconds{kind="media.sweep"} 0`,
	)
	if !deadline {
		t.Error("the jobs query ran without a deadline")
	}
}

// TestJobMetricsWhenTheDatabaseIsDown checks that a failing jobs query turns stats_up to 0 and
// leaves the rest of the scrape intact.
func TestJobMetricsWhenTheDatabaseIsDown(t *testing.T) {
	m, err := metrics.New(metrics.Sources{
		HashesInFlight: func() int64 { return 1 },
		Jobs: func(context.Context) ([]metrics.JobStats, error) {
			return nil, errors.New("database unreachable")
		},
		JobKinds: []string{"ecg.analyse"},
	})
	if err != nil {
		t.Fatal(err)
	}
	text := scrape(t, m.Handler())
	assertLines(t, text, `postsvc_jobs_stats_up 0`, `postsvc_password_hashes_in_flight 1`)
	if strings.Contains(text, "postsvc_jobs_queued") {
		t.Errorf("job counts reported while they could not be read:\n%s", text)
	}
}

// TestJobOutcomeMetrics reports the attempts this process settled, by kind and outcome.
func TestJobOutcomeMetrics(t *testing.T) {
	m, err := metrics.New(metrics.Sources{JobOutcomes: func() map[[2]string]int64 {
		return map[[2]string]int64{{"user.cleanup", "done"}: 4, {"user.cleanup", "retried"}: 1}
	}})
	if err != nil {
		t.Fatal(err)
	}
	text := scrape(t, m.Handler())
	for _, want := range []string{
		`postsvc_jobs_attempts_total{kind="user.cleanup",outcome="done"} 4`,
		`postsvc_jobs_attempts_total{kind="user.cleanup",outcome="retried"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %s:\n%s", want, text)
		}
	}
}
