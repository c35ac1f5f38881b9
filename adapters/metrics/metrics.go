// Package metrics exposes the service's Prometheus metrics: HTTP request counts and
// latencies by route template, database pool statistics, post cache counters, password
// hashes in flight and background job counts. It keeps its own registry (never the global default), so tests and
// several instances in one process do not collide.
//
// The package reads the other adapters only through plain functions handed to New, so it
// imports neither gorm nor the cache nor the hasher; the composition root builds those
// functions.
package metrics

import (
	"database/sql"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every metric the service defines itself.
const Namespace = "postsvc"

// UnmatchedRoute is the route label of requests no route matched (404s and 405s). The raw
// path is never used as a label: it would let any client create unbounded series.
const UnmatchedRoute = "unmatched"

// otherMethod is the method label of requests with a method outside the standard set, for
// the same reason.
const otherMethod = "OTHER"

// DBStatsFunc returns the database pool statistics (database/sql's DBStats).
type DBStatsFunc func() sql.DBStats

// CacheStats is a snapshot of the post cache counters. Hits, Misses, Evictions and Rejected
// only grow; Bytes and Items are current values.
type CacheStats struct {
	Hits      int64
	Misses    int64
	Evictions int64
	Rejected  int64
	Bytes     int64
	Items     int64
}

// CacheStatsFunc returns the post cache counters.
type CacheStatsFunc func() CacheStats

// HashesInFlightFunc returns how many password hashes are being computed right now.
type HashesInFlightFunc func() int64

// Sources are where the gauges and counters that the service does not update itself come
// from. A nil source leaves its metrics out.
type Sources struct {
	DBStats DBStatsFunc
	Cache   CacheStatsFunc
	// Connections returns the HTTP connections open now, those refused past
	// APP_HTTP_MAX_CONNECTIONS and the requests refused before routing, since start.
	Connections    func() (open, refused, unparsed int64)
	HashesInFlight HashesInFlightFunc
	// HashesQueued returns how many password checks wait for a hashing slot, and HashesShed
	// how many have been refused as overloaded since start.
	HashesQueued func() int64
	HashesShed   func() int64
	// Jobs reads the background job counts by kind; JobKinds lists the kinds that are
	// reported even while they have no jobs (those with handlers, typically).
	Jobs     JobStatsFunc
	JobKinds []string
	// JobOutcomes returns how many job attempts this process has settled, by kind and
	// outcome (done, retried, failed, handed back).
	JobOutcomes func() map[[2]string]int64
	// Media reads the image repository's counters since start.
	Media func() MediaStats
	// Principals returns how many requests' principals came from memory and how many from
	// the database.
	Principals func() (hits, misses int64)
	// Redis reports whether Redis answers, how many calls to it failed and how many outages
	// began since start; nil without Redis.
	Redis func() (up bool, failures, outages int64)
	// RedisCutoffs returns how many other instances said, through the database, that they
	// cannot reach Redis (this one then reads principals from the database); nil without Redis.
	RedisCutoffs func() int64
	// BoardReads returns how many reads of the principal board a recent Redis round trip let
	// through and how many waited for one of their own; nil without Redis.
	BoardReads func() (fresh, waited int64)
}

// MediaStats are the image repository's counters; each only grows.
type MediaStats struct {
	// Uploaded and UploadedBytes count the images stored by uploads and their bytes.
	Uploaded, UploadedBytes int64
	// Refused counts upload requests refused for their content (format, size, pixels, quota).
	Refused int64
	// Thumbnails counts thumbnails made, Placeholders those of them made for images whose
	// pixel data does not decode; Swept, stored objects without an image removed.
	Thumbnails, Placeholders, Swept int64
}

// latencyBuckets cover fast reads (a few milliseconds), password hashing (tens to hundreds of
// milliseconds) and slow uploads near the request timeout.
var latencyBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// Metrics owns the registry and the HTTP instruments.
type Metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec

	// series keeps each label set's two instruments, so that a request finds them with one
	// map read instead of building the labels and hashing them twice. It holds no more entries
	// than the vectors hold series: routes are templates, methods a fixed set, and statuses
	// three digits.
	seriesMu sync.RWMutex
	series   map[seriesKey]httpSeries
}

type seriesKey struct {
	route, method string
	status        int
}

type httpSeries struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

// New builds a registry with the Go runtime and process collectors, the HTTP instruments
// and collectors over src.
func New(src Sources) (*Metrics, error) {
	labels := []string{"route", "method", "status"}
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests answered, by route template, method and status code.",
		}, labels),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "http", Name: "request_duration_seconds",
			Help:    "Time from the request reaching the router to the handler returning, by route template, method and status code.",
			Buckets: latencyBuckets,
		}, labels),
		series: make(map[seriesKey]httpSeries),
	}
	cs := []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests,
		m.latency,
	}
	if src.DBStats != nil {
		cs = append(cs, newDBCollector(src.DBStats))
	}
	if src.Connections != nil {
		f := src.Connections
		cs = append(cs,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Namespace: Namespace, Subsystem: "http", Name: "open_connections",
				Help: "Connections the HTTP listeners (the API's and the operations one) hold open now, idle keep-alive ones included.",
			}, func() float64 { n, _, _ := f(); return float64(n) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: Namespace, Subsystem: "http", Name: "connections_refused_total",
				Help: "Connections answered 503 overloaded and closed because a listener held APP_HTTP_MAX_CONNECTIONS already.",
			}, func() float64 { _, n, _ := f(); return float64(n) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: Namespace, Subsystem: "http", Name: "requests_refused_before_routing_total",
				Help: "Requests refused before any route saw them because they are not valid HTTP/1.1 (headers too large, unparsable, unsupported transfer coding or version, unknown Expect); not in http_requests_total.",
			}, func() float64 { _, _, n := f(); return float64(n) }))
	}
	if src.Cache != nil {
		cs = append(cs, newCacheCollector(src.Cache))
	}
	if src.HashesInFlight != nil {
		f := src.HashesInFlight
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "password", Name: "hashes_in_flight",
			Help: "Argon2id password hashes being computed right now (callers waiting for a slot not included).",
		}, func() float64 { return float64(f()) }))
	}
	if src.HashesQueued != nil {
		f := src.HashesQueued
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "password", Name: "hashes_queued",
			Help: "Password checks waiting for a hashing slot right now.",
		}, func() float64 { return float64(f()) }))
	}
	if src.HashesShed != nil {
		f := src.HashesShed
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "password", Name: "hashes_shed_total",
			Help: "Password checks refused at once as overloaded (503 overloaded) instead of queued.",
		}, func() float64 { return float64(f()) }))
	}
	if src.Jobs != nil {
		cs = append(cs, newJobsCollector(src.Jobs, src.JobKinds))
	}
	if src.JobOutcomes != nil {
		cs = append(cs, newOutcomesCollector(src.JobOutcomes))
	}
	if src.Media != nil {
		f := src.Media
		for _, c := range []struct {
			name, help string
			value      func(MediaStats) int64
		}{
			{"images_uploaded_total", "Images stored by uploads.", func(s MediaStats) int64 { return s.Uploaded }},
			{"uploaded_bytes_total", "Bytes of the images stored by uploads, after their metadata was removed.", func(s MediaStats) int64 { return s.UploadedBytes }},
			{"uploads_refused_total", "Upload requests refused for their content: format, size, pixels or quota.", func(s MediaStats) int64 { return s.Refused }},
			{"thumbnails_made_total", "Thumbnails made, by the background jobs or on first request.", func(s MediaStats) int64 { return s.Thumbnails }},
			{"thumbnail_placeholders_total", "Thumbnails made as flat grey placeholders because the image's pixel data does not decode.", func(s MediaStats) int64 { return s.Placeholders }},
			{"objects_swept_total", "Stored objects that no image referred to, removed by the sweep.", func(s MediaStats) int64 { return s.Swept }},
		} {
			cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: Namespace, Subsystem: "media", Name: c.name, Help: c.help,
			}, func() float64 { return float64(c.value(f())) }))
		}
	}
	if src.Principals != nil {
		f := src.Principals
		cs = append(cs,
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: Namespace, Subsystem: "principal_cache", Name: "hits_total",
				Help: "Authenticated requests whose principal was served from memory.",
			}, func() float64 { h, _ := f(); return float64(h) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: Namespace, Subsystem: "principal_cache", Name: "misses_total",
				Help: "Authenticated requests whose principal was read from the database.",
			}, func() float64 { _, m := f(); return float64(m) }))
	}
	if src.Redis != nil {
		f := src.Redis
		cs = append(cs,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Namespace: Namespace, Subsystem: "redis", Name: "up",
				Help: "1 while Redis answers; 0 while principals are read from the database and attempts are throttled locally.",
			}, func() float64 {
				if up, _, _ := f(); up {
					return 1
				}
				return 0
			}),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: Namespace, Subsystem: "redis", Name: "failures_total",
				Help: "Calls to Redis that failed or timed out (each fell back to the database or to local throttling).",
			}, func() float64 { _, n, _ := f(); return float64(n) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: Namespace, Subsystem: "redis", Name: "outages_total",
				Help: "Times Redis stopped answering since start.",
			}, func() float64 { _, _, n := f(); return float64(n) }))
	}
	if src.RedisCutoffs != nil {
		f := src.RedisCutoffs
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "redis", Name: "cutoff_instances",
			Help: "Other instances that said, through the database, that they cannot reach Redis; while any does, principals and post lists are read from the database.",
		}, func() float64 { return float64(f()) }))
	}
	if src.BoardReads != nil {
		f := src.BoardReads
		cs = append(cs,
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: Namespace, Subsystem: "redis", Name: "board_reads_fresh_total",
				Help: "Reads of users' stamps served from memory without waiting: a round trip to Redis that started at most 4 ms before had come back.",
			}, func() float64 { n, _ := f(); return float64(n) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: Namespace, Subsystem: "redis", Name: "board_reads_waited_total",
				Help: "Reads of users' stamps that waited for a round trip to Redis of their own (an idle instance, or round trips slower than 4 ms).",
			}, func() float64 { _, n := f(); return float64(n) }))
	}
	var errs []error
	for _, c := range cs {
		if err := m.registry.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}

// Registry returns the registry, for tests and for collectors added by the caller.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// Handler serves the registry in the Prometheus text format (GET /metrics).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		Registry:            m.registry, // counts its own scrape errors
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

// Middleware records every request it sees once the rest of the chain has answered. The
// route label is the matched route template (c.FullPath(), "/api/v1/posts/:id"), or
// UnmatchedRoute; never the raw path. A panic passing through is recorded as a 500 and
// re-raised for the recovery middleware.
//
// status is the status to record for an answered request (the HTTP kernel's
// httpapi.RecordedStatus, which gives a request whose client went away 499 rather than the
// 503 sent); nil records the status written.
func (m *Metrics) Middleware(status func(*gin.Context) int) gin.HandlerFunc {
	if status == nil {
		status = func(c *gin.Context) int { return c.Writer.Status() }
	}
	return func(c *gin.Context) {
		start := time.Now()
		panicked := true
		defer func() {
			code := status(c)
			if panicked {
				code = http.StatusInternalServerError
			}
			hs := m.seriesOf(seriesKey{route: routeLabel(c.FullPath()), method: methodLabel(c.Request.Method), status: code})
			hs.requests.Inc()
			hs.latency.Observe(time.Since(start).Seconds())
		}()
		c.Next()
		panicked = false
	}
}

// seriesOf returns the instruments of one label set, made on its first request.
func (m *Metrics) seriesOf(k seriesKey) httpSeries {
	m.seriesMu.RLock()
	hs, ok := m.series[k]
	m.seriesMu.RUnlock()
	if ok {
		return hs
	}
	status := strconv.Itoa(k.status)
	hs = httpSeries{
		requests: m.requests.WithLabelValues(k.route, k.method, status),
		latency:  m.latency.WithLabelValues(k.route, k.method, status),
	}
	m.seriesMu.Lock()
	m.series[k] = hs
	m.seriesMu.Unlock()
	return hs
}

func routeLabel(fullPath string) string {
	if fullPath == "" {
		return UnmatchedRoute
	}
	return fullPath
}

func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return otherMethod
}
