package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
)

// scrape reads the private listener's /metrics.
func scrape(t *testing.T, private *httptest.Server) string {
	t.Helper()
	res, err := http.Get(private.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d, %v\n%s", res.StatusCode, err, body)
	}
	return string(body)
}

// sample returns the value of the series named exactly as series (name and
// labels as Prometheus writes them), or -1 when it is absent.
func sample(t *testing.T, metrics, series string) float64 {
	t.Helper()
	for line := range strings.SplitSeq(metrics, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	return -1
}

// Ensure the private listener reports requests by route template, uploads,
// failed sign-ins and lockouts, the tenant databases held, the job queue
// and the outbox, and answers health checks, while the public API does not
// serve metrics.
func TestMetrics(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		cfg := apptest.Config(t, shape)
		cfg.PProf = true
		env := apptest.Start(t, cfg)
		private := httptest.NewServer(env.App.PrivateHandler())
		t.Cleanup(private.Close)

		u := env.SignUp(t, "Measured")
		tenantID := env.CreateTenant(t, u, "Measured")
		content := []byte(strings.Repeat("m", 3000))
		env.Upload(t, u, tenantID, "m.txt", content)
		for range 3 {
			env.Get(t, "/api/tenants/"+tenantID+"/documents", u.AccessToken).Expect(t, http.StatusOK, "")
		}
		for range 6 {
			env.Do(t, post("/api/auth/login", map[string]string{"email": "measured.nobody@example.com", "password": "Wrong-pass-1"}))
		}
		env.Get(t, "/no/such/"+tenantID, "").Expect(t, http.StatusNotFound, "NOT_FOUND")
		env.Get(t, "/metrics", "").Expect(t, http.StatusNotFound, "NOT_FOUND")

		m := scrape(t, private)
		route := `route="/api/tenants/{tenant_id}/documents"`
		for series, want := range map[string]float64{
			`tenantry_http_requests_total{method="GET",` + route + `,status="200"}`:     3,
			`tenantry_http_requests_total{method="POST",` + route + `,status="201"}`:    1,
			`tenantry_http_request_duration_seconds_count{method="GET",` + route + `}`:  3,
			`tenantry_http_requests_total{method="GET",route="unmatched",status="404"}`: 2,
			`tenantry_upload_bytes_total`:                                                         float64(len(content)),
			`tenantry_signin_failures_total{reason="invalid_credentials"}`:                        5,
			`tenantry_signin_failures_total{reason="locked"}`:                                     1,
			`tenantry_signin_lockouts_total`:                                                      1,
			`tenantry_tenant_database_connection_slots`:                                           float64(cfg.TenantDBMaxConns),
			`tenantry_http_requests_total{method="POST",route="/api/auth/login",status="401"}`:    5,
			`tenantry_http_requests_total{method="POST",route="/api/auth/login",status="423"}`:    1,
			`tenantry_http_requests_total{method="POST",route="/api/auth/register",status="201"}`: 1,
		} {
			if got := sample(t, m, series); got != want {
				t.Errorf("%s = %v, want %v", series, got, want)
			}
		}
		for _, series := range []string{"tenantry_tenant_databases_open", "tenantry_outbox_pending_streams", "tenantry_outbox_relay_lag_seconds", "go_goroutines", "process_resident_memory_bytes"} {
			if sample(t, m, series) < 0 {
				t.Errorf("%s is missing", series)
			}
		}
		if sample(t, m, "tenantry_tenant_databases_open") < 1 {
			t.Error("no tenant database reported open after using one")
		}
		// The upload queues a job, and periodic jobs are queued at start,
		// both in the background.
		jobCount := regexp.MustCompile(`(?m)^tenantry_jobs\{kind="[a-z_.]+",state="[a-z]+"\} \d+$`)
		for deadline := time.Now().Add(20 * time.Second); !jobCount.MatchString(m); m = scrape(t, private) {
			if time.Now().After(deadline) {
				t.Fatalf("no job counts by kind and state:\n%s", m)
			}
			time.Sleep(50 * time.Millisecond)
		}
		// Series are labelled by templates, never by the paths clients
		// chose: a tenant id in a label would be a series per tenant.
		if strings.Contains(m, tenantID) {
			t.Errorf("a tenant id appears in the metrics")
		}

		for _, path := range []string{"/health", "/ready", "/debug/pprof/"} {
			res, err := http.Get(private.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Errorf("private %s: %d", path, res.StatusCode)
			}
		}
	})
}

// Ensure the profiler is served only when asked for, and metrics off means
// no private listener at all.
func TestProfilerAndMetricsAreOptIn(t *testing.T) {
	t.Parallel()
	env := apptest.StartShape(t, config.Embedded)
	private := httptest.NewServer(env.App.PrivateHandler())
	t.Cleanup(private.Close)
	res, err := http.Get(private.URL + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("the profiler answered %d without TENANTRY_PPROF", res.StatusCode)
	}

	cfg := apptest.Config(t, config.Embedded)
	cfg.MetricsAddr = config.MetricsOff
	off := apptest.Start(t, cfg)
	if off.App.PrivateHandler() != nil {
		t.Fatal("metrics off still has a private handler")
	}
	off.Get(t, "/health", "").Expect(t, http.StatusOK, "")
}
