package metrics

import (
	"context"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// JobStats is a snapshot of the background jobs of one kind: how many wait (Queued, including
// those whose next attempt is not due yet), run and have failed for good, and how long the job
// that has waited longest has been due.
type JobStats struct {
	Kind            string
	Queued          int64
	Running         int64
	Failed          int64
	OldestQueuedAge time.Duration
}

// JobStatsFunc reads the job counts of every kind that has jobs. It queries the database, so
// it receives a context that bounds it.
type JobStatsFunc func(ctx context.Context) ([]JobStats, error)

// jobStatsTimeout bounds the jobs query of one scrape, so that a slow or unreachable database
// cannot hold the scrape until Prometheus gives up on it.
const jobStatsTimeout = 2 * time.Second

// jobsCollector reads the job counts at scrape time, from the database shared by every
// instance: each instance reports the same, cluster-wide numbers (aggregate them with max,
// not sum).
type jobsCollector struct {
	stats                               JobStatsFunc
	kinds                               []string
	queued, running, failed, oldest, up *prometheus.Desc
}

func newJobsCollector(stats JobStatsFunc, kinds []string) *jobsCollector {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "jobs", name), help, labels, nil)
	}
	return &jobsCollector{
		stats:   stats,
		kinds:   slices.Clone(kinds),
		queued:  desc("queued", "Background jobs waiting to run, including those waiting for a retry, by kind.", "kind"),
		running: desc("running", "Background jobs claimed by a worker, by kind.", "kind"),
		failed:  desc("failed", "Background jobs failed for good and not yet purged, by kind.", "kind"),
		oldest: desc("oldest_queued_age_seconds",
			"How long the job of the kind that has waited longest has been due without being claimed; 0 when none is due.", "kind"),
		up: desc("stats_up", "1 when the last scrape could read the job counts, 0 when the database could not be read (the counts are then left out)."),
	}
}

func (c *jobsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.queued, c.running, c.failed, c.oldest, c.up} {
		ch <- d
	}
}

// Collect reports every kind that has jobs and every kind in c.kinds (with zeros when it has
// none), so that a dashboard sees a zero rather than a missing series. When the counts cannot
// be read, only stats_up (0) is reported: failing the whole scrape would hide every other
// metric exactly when the database is in trouble.
func (c *jobsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), jobStatsTimeout)
	defer cancel()
	stats, err := c.stats(ctx)
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if err != nil {
		gauge(c.up, 0)
		return
	}
	gauge(c.up, 1)
	byKind := map[string]JobStats{}
	for _, k := range c.kinds {
		byKind[k] = JobStats{Kind: k}
	}
	for _, s := range stats {
		byKind[s.Kind] = s
	}
	for _, s := range byKind {
		gauge(c.queued, float64(s.Queued), s.Kind)
		gauge(c.running, float64(s.Running), s.Kind)
		gauge(c.failed, float64(s.Failed), s.Kind)
		gauge(c.oldest, s.OldestQueuedAge.Seconds(), s.Kind)
	}
}

// outcomesCollector reports the job attempts this process settled: unlike the queue counts,
// they are per instance (sum them).
type outcomesCollector struct {
	read func() map[[2]string]int64
	desc *prometheus.Desc
}

func newOutcomesCollector(read func() map[[2]string]int64) *outcomesCollector {
	return &outcomesCollector{read: read, desc: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "jobs", "attempts_total"),
		"Job attempts this process has settled, by kind and outcome (done, retried, failed, handed back).", []string{"kind", "outcome"}, nil)}
}

func (c *outcomesCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *outcomesCollector) Collect(ch chan<- prometheus.Metric) {
	for k, n := range c.read() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(n), k[0], k[1])
	}
}
