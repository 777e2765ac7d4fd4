package metrics_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tenantry/tenantry/metrics"
)

// Ensure a recorded request shows in the scrape under its template, with its
// duration in the histogram, and that gauges read at scrape time do.
func TestObserveRequestAndGauges(t *testing.T) {
	t.Parallel()
	m := metrics.New(slog.New(slog.DiscardHandler))
	m.ObserveRequest("/api/things/{id}", http.MethodGet, 200, 30*time.Millisecond)
	m.ObserveRequest("/api/things/{id}", http.MethodGet, 200, 2*time.Second)
	m.DeadLettered()
	m.ObserveTimestampRequest("digicert", "stamped", 40*time.Millisecond)
	m.ObserveTimestampRequest("digicert", "unavailable", 3*time.Second)
	value := 7.0
	m.Gauge("test_value", "A value.", func() float64 { return value })
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	for _, want := range []string{
		`tenantry_http_requests_total{method="GET",route="/api/things/{id}",status="200"} 2`,
		`tenantry_http_request_duration_seconds_bucket{method="GET",route="/api/things/{id}",le="0.05"} 1`,
		`tenantry_http_request_duration_seconds_bucket{method="GET",route="/api/things/{id}",le="2.5"} 2`,
		`test_value 7`,
		`tenantry_kafka_dead_letters_total 1`,
		`tenantry_tsa_requests_total{authority="digicert",outcome="stamped"} 1`,
		`tenantry_tsa_requests_total{authority="digicert",outcome="unavailable"} 1`,
		`tenantry_tsa_request_duration_seconds_bucket{authority="digicert",le="0.05"} 1`,
		`tenantry_tsa_request_duration_seconds_count{authority="digicert"} 2`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("scrape lacks %q:\n%s", want, body)
		}
	}
}

// BenchmarkObserveRequest measures what recording one request costs the
// request: a counter and a histogram found by their labels and updated.
func BenchmarkObserveRequest(b *testing.B) {
	m := metrics.New(slog.New(slog.DiscardHandler))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveRequest("/api/users/me", http.MethodGet, 200, 120*time.Microsecond)
		}
	})
}
