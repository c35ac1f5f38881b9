package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// dbCollector reads the pool statistics at scrape time, so the numbers are current and
// nothing has to poll.
type dbCollector struct {
	stats                                     DBStatsFunc
	maxOpen, open, inUse, idle                *prometheus.Desc
	waitCount, waitDuration                   *prometheus.Desc
	maxIdleClosed, idleTimeClosed, lifeClosed *prometheus.Desc
}

func newDBCollector(stats DBStatsFunc) *dbCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "db", name), help, nil, nil)
	}
	return &dbCollector{
		stats:          stats,
		maxOpen:        desc("max_open_connections", "Maximum number of open connections the pool allows."),
		open:           desc("open_connections", "Connections established, in use and idle."),
		inUse:          desc("in_use_connections", "Connections in use."),
		idle:           desc("idle_connections", "Idle connections."),
		waitCount:      desc("wait_count_total", "Times a caller waited for a free connection."),
		waitDuration:   desc("wait_duration_seconds_total", "Total time callers waited for a free connection."),
		maxIdleClosed:  desc("max_idle_closed_total", "Connections closed because of the idle pool size."),
		idleTimeClosed: desc("max_idle_time_closed_total", "Connections closed because they were idle too long."),
		lifeClosed:     desc("max_lifetime_closed_total", "Connections closed because they reached their maximum lifetime."),
	}
}

func (c *dbCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.maxOpen, c.open, c.inUse, c.idle, c.waitCount, c.waitDuration, c.maxIdleClosed, c.idleTimeClosed, c.lifeClosed} {
		ch <- d
	}
}

func (c *dbCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(c.maxOpen, float64(s.MaxOpenConnections))
	gauge(c.open, float64(s.OpenConnections))
	gauge(c.inUse, float64(s.InUse))
	gauge(c.idle, float64(s.Idle))
	counter(c.waitCount, float64(s.WaitCount))
	counter(c.waitDuration, s.WaitDuration.Seconds())
	counter(c.maxIdleClosed, float64(s.MaxIdleClosed))
	counter(c.idleTimeClosed, float64(s.MaxIdleTimeClosed))
	counter(c.lifeClosed, float64(s.MaxLifetimeClosed))
}

// cacheCollector reads the post cache counters at scrape time.
type cacheCollector struct {
	stats                             CacheStatsFunc
	hits, misses, evictions, rejected *prometheus.Desc
	bytes, items                      *prometheus.Desc
}

func newCacheCollector(stats CacheStatsFunc) *cacheCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "post_cache", name), help, nil, nil)
	}
	return &cacheCollector{
		stats:     stats,
		hits:      desc("hits_total", "Post list requests answered from the cache."),
		misses:    desc("misses_total", "Post list requests that needed a database load."),
		evictions: desc("evictions_total", "Cached pages removed by expiry or invalidation."),
		rejected:  desc("rejected_total", "Loaded pages not cached because they did not fit the byte budget."),
		bytes:     desc("bytes", "Estimated bytes held by cached pages."),
		items:     desc("items", "Cached pages held."),
	}
}

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.hits, c.misses, c.evictions, c.rejected, c.bytes, c.items} {
		ch <- d
	}
}

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	counter := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter(c.hits, s.Hits)
	counter(c.misses, s.Misses)
	counter(c.evictions, s.Evictions)
	counter(c.rejected, s.Rejected)
	gauge(c.bytes, s.Bytes)
	gauge(c.items, s.Items)
}
