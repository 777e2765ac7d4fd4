package app

import (
	"context"
	"net/http"

	"github.com/tenantry/tenantry/account"
	"github.com/tenantry/tenantry/api"
	"github.com/tenantry/tenantry/jobs"
	"github.com/tenantry/tenantry/kafka"
	"github.com/tenantry/tenantry/metrics"
	"github.com/tenantry/tenantry/outbox"
	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/tenantdb"
	"github.com/tenantry/tenantry/timestamp"
)

// The Metrics as each package that records sees it: nil interfaces when
// metrics are off, never an interface holding a nil pointer.
func (a *App) apiMetrics() api.Metrics {
	if a.Metrics == nil {
		return nil
	}
	return a.Metrics
}

func (a *App) accountMetrics() account.Metrics {
	if a.Metrics == nil {
		return nil
	}
	return a.Metrics
}

func (a *App) timestampMetrics() timestamp.Observer {
	if a.Metrics == nil {
		return nil
	}
	return a.Metrics
}

func (a *App) kafkaMetrics() kafka.Metrics {
	if a.Metrics == nil {
		return nil
	}
	return a.Metrics
}

// registerGauges adds the metrics read when Prometheus scrapes: the tenant
// databases this process holds, the job queue and the outbox backlog.
func (a *App) registerGauges() {
	m := a.Metrics
	stat := func(field func(s tenantdb.Stats) int) func() float64 {
		return func() float64 { return float64(field(a.Tenants.Stats())) }
	}
	m.Gauge("tenantry_tenant_databases_open", "Tenant databases this process holds open, in use or idle.",
		stat(func(s tenantdb.Stats) int { return s.Open }))
	m.Gauge("tenantry_tenant_databases_in_use", "Tenant databases leased by a request or a job right now.",
		stat(func(s tenantdb.Stats) int { return s.Leased }))
	m.Gauge("tenantry_tenant_database_connections", "Connections the open tenant databases hold.",
		stat(func(s tenantdb.Stats) int { return s.Connections }))
	m.Gauge("tenantry_tenant_database_connection_slots_reserved", "Connection slots the open tenant databases reserve under the cap.",
		stat(func(s tenantdb.Stats) int { return s.Reserved }))
	m.Gauge("tenantry_tenant_database_connection_slots", "The cap on tenant database connections of this process.",
		stat(func(s tenantdb.Stats) int { return s.Cap }))

	control := a.Engines.Control
	m.Gauges("tenantry_jobs", "Jobs in the queue, by kind and state.", []string{"kind", "state"},
		func(ctx context.Context) ([]metrics.Sample, error) {
			counts, err := jobs.Counts(ctx, control)
			if err != nil {
				return nil, err
			}
			out := make([]metrics.Sample, len(counts))
			for i, c := range counts {
				out[i] = metrics.Sample{Labels: []string{c.Kind, c.State}, Value: float64(c.Jobs)}
			}
			return out, nil
		})
	backlog := func(pick func(streams int64, lagSeconds float64) float64) func(ctx context.Context) ([]metrics.Sample, error) {
		return func(ctx context.Context) ([]metrics.Sample, error) {
			streams, lag, err := outbox.Backlog(ctx, control, sqldb.Now())
			if err != nil {
				return nil, err
			}
			return []metrics.Sample{{Value: pick(streams, lag.Seconds())}}, nil
		}
	}
	m.Gauges("tenantry_outbox_pending_streams", "Event streams (the platform's and tenants') with events waiting for the relay.", nil,
		backlog(func(streams int64, _ float64) float64 { return float64(streams) }))
	m.Gauges("tenantry_outbox_relay_lag_seconds", "How long the stream that has waited longest for the relay has waited.", nil,
		backlog(func(_ int64, lag float64) float64 { return lag }))
}

// PrivateHandler is what the private listener (TENANTRY_METRICS_ADDR)
// serves: /metrics, /health and /ready, and the profiler with
// TENANTRY_PPROF. It is nil when metrics are off.
func (a *App) PrivateHandler() http.Handler {
	if a.Metrics == nil {
		return nil
	}
	return a.Metrics.PrivateMux(a.Server, a.Config.PProf)
}
