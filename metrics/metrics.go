// Package metrics holds tenantry's Prometheus metrics in a registry of its
// own (never the client library's global one), and serves them with the
// health checks and, on request, the profiler, on a listener meant to stay
// private. Other packages record through small interfaces of their own that
// *Metrics satisfies, so none of them depends on Prometheus; state that a
// database knows (jobs, the outbox backlog) is read when Prometheus
// scrapes, through Gauges.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is one process's registry and the metrics it records directly.
type Metrics struct {
	reg      *prometheus.Registry
	logger   *slog.Logger
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	uploadBytes    prometheus.Counter
	signInFailures *prometheus.CounterVec
	lockouts       prometheus.Counter
	produceErrors  prometheus.Counter
	consumeErrors  prometheus.Counter
	deadLetters    prometheus.Counter
	tsaRequests    *prometheus.CounterVec
	tsaDuration    *prometheus.HistogramVec
}

// New returns a registry with the Go runtime's and the process's own
// metrics and tenantry's. Failures to read a gauge go to logger.
func New(logger *slog.Logger) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), logger: logger}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tenantry_http_requests_total",
		Help: "HTTP requests answered, by route template, method and status.",
	}, []string{"route", "method", "status"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tenantry_http_request_duration_seconds",
		Help:    "Time to answer HTTP requests, by route template and method.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"route", "method"})
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		m.reg.MustRegister(c)
		return c
	}
	m.uploadBytes = counter("tenantry_upload_bytes_total", "Bytes of the files uploaded.")
	m.signInFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tenantry_signin_failures_total",
		Help: "Sign-ins refused, by reason: invalid_credentials (wrong password or unknown address) or locked.",
	}, []string{"reason"})
	m.reg.MustRegister(m.signInFailures)
	m.lockouts = counter("tenantry_signin_lockouts_total", "Addresses locked after repeated failed sign-ins.")
	m.produceErrors = counter("tenantry_kafka_produce_errors_total", "Event records the Kafka brokers did not acknowledge.")
	m.consumeErrors = counter("tenantry_kafka_consume_errors_total",
		"Kafka fetch errors, undecodable records, failed event handlers, failed dead letter writes and failed offset commits.")
	m.deadLetters = counter("tenantry_kafka_dead_letters_total",
		"Kafka records given up on and written to their topic's dead letter topic.")
	m.tsaRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tenantry_tsa_requests_total",
		Help: "Requests to time-stamping authorities, by authority and outcome: stamped, refused, invalid (failed verification) or unavailable.",
	}, []string{"authority", "outcome"})
	m.tsaDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tenantry_tsa_request_duration_seconds",
		Help:    "Time to obtain and verify a time-stamp, by authority.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"authority"})
	m.reg.MustRegister(m.tsaRequests, m.tsaDuration)
	m.reg.MustRegister(m.requests, m.duration,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveRequest records one answered HTTP request. route must be a
// template ("/api/tenants/{tenant_id}"), never a raw path, so that the
// number of series stays bounded.
func (m *Metrics) ObserveRequest(route, method string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route, method).Observe(d.Seconds())
}

// Uploaded records the bytes of an uploaded file.
func (m *Metrics) Uploaded(bytes int64) { m.uploadBytes.Add(float64(bytes)) }

// SignInFailed records a refused sign-in: reason is invalid_credentials or
// locked.
func (m *Metrics) SignInFailed(reason string) { m.signInFailures.WithLabelValues(reason).Inc() }

// LockedOut records an address locked after repeated failed sign-ins.
func (m *Metrics) LockedOut() { m.lockouts.Inc() }

// ProduceFailed records event records the Kafka brokers did not acknowledge.
func (m *Metrics) ProduceFailed(records int) { m.produceErrors.Add(float64(records)) }

// ConsumeFailed records a failure to consume from Kafka.
func (m *Metrics) ConsumeFailed() { m.consumeErrors.Inc() }

// ObserveTimestampRequest records one request to a time-stamping
// authority.
func (m *Metrics) ObserveTimestampRequest(authority, outcome string, d time.Duration) {
	m.tsaRequests.WithLabelValues(authority, outcome).Inc()
	m.tsaDuration.WithLabelValues(authority).Observe(d.Seconds())
}

// DeadLettered records a Kafka record written to a dead letter topic.
func (m *Metrics) DeadLettered() { m.deadLetters.Inc() }

// Gauge registers a gauge whose value fn reads when Prometheus scrapes.
func (m *Metrics) Gauge(name, help string, fn func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
}

// Sample is one value of a labelled gauge.
type Sample struct {
	Labels []string
	Value  float64
}

// Gauges registers a gauge with labels whose samples read reads when
// Prometheus scrapes, under a timeout. When read fails, the scrape goes on
// without these samples and the failure is logged.
func (m *Metrics) Gauges(name, help string, labels []string, read func(ctx context.Context) ([]Sample, error)) {
	m.reg.MustRegister(&readCollector{desc: prometheus.NewDesc(name, help, labels, nil), read: read, logger: m.logger})
}

// scrapeTimeout bounds the queries a scrape runs.
const scrapeTimeout = 3 * time.Second

type readCollector struct {
	desc   *prometheus.Desc
	read   func(ctx context.Context) ([]Sample, error)
	logger *slog.Logger
}

func (c *readCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *readCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	samples, err := c.read(ctx)
	if err != nil {
		c.logger.Warn("reading a metric", "metric", c.desc.String(), "error", err)
		return
	}
	for _, s := range samples {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, s.Value, s.Labels...)
	}
}

// Handler serves the registry's metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// PrivateMux routes what the private listener serves: /metrics, /health and
// /ready (answered by health), and with profile the profiler under
// /debug/pprof/.
func (m *Metrics) PrivateMux(health http.Handler, profile bool) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.Handle("GET /health", health)
	mux.Handle("GET /ready", health)
	if profile {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}
