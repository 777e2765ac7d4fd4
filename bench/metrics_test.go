package bench_test

import (
	"slices"
	"testing"
	"time"

	"github.com/tenantry/tenantry/config"
)

// metricsRounds is how many times each of the two children is loaded, in
// alternation, so that drift in the shared machine's speed falls on both.
const metricsRounds = 3

// BenchmarkMetricsOverhead measures what recording metrics costs the
// cheapest authenticated request, GET /api/users/me: two `tenantry serve`
// children with every default, one with metrics on (as users run it) and
// one with TENANTRY_METRICS_ADDR=off, loaded by wrk in turn, metricsRounds
// times each. It reports each child's median requests per second and CPU
// time per request, and the overhead of metrics on both, in percent.
//
// It is a fixed-duration measurement that ignores b.N: run it with
// -benchtime 1x. It is skipped without wrk.
func BenchmarkMetricsOverhead(b *testing.B) {
	bin := buildTenantry(b)
	eachShape(b, func(b *testing.B, shape config.Shape) {
		type side struct {
			name      string
			child     *child
			url, auth string
			rates     []float64
			cpuPerReq []float64 // microseconds
		}
		sides := []*side{{name: "on"}, {name: "off"}}
		for _, s := range sides {
			extra := []string{}
			if s.name == "off" {
				extra = append(extra, "TENANTRY_METRICS_ADDR=off")
			}
			s.child = startChild(b, bin, shape, extra...)
			a := s.child.signUp(b, "Measured")
			s.url, s.auth = s.child.url+"/api/users/me", "Authorization: Bearer "+a.token
		}
		for range metricsRounds {
			for _, s := range sides {
				var r wrkResult
				start := time.Now()
				cores := s.child.cores(b, func() { r = runWrk(b, wrkThreads, loadClients, s.url, s.auth) })
				// cores averages over warm-up and window, at rates
				// that differ little between them.
				cpu := cores * time.Since(start).Seconds()
				requests := r.perSecond * time.Since(start).Seconds()
				s.rates = append(s.rates, r.perSecond)
				s.cpuPerReq = append(s.cpuPerReq, cpu/requests*1e6)
			}
		}
		median := func(v []float64) float64 {
			v = slices.Clone(v)
			slices.Sort(v)
			return v[len(v)/2]
		}
		on, off := sides[0], sides[1]
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(median(on.rates), "req/s-on")
		b.ReportMetric(median(off.rates), "req/s-off")
		b.ReportMetric(median(on.cpuPerReq), "cpu-us/req-on")
		b.ReportMetric(median(off.cpuPerReq), "cpu-us/req-off")
		b.ReportMetric((median(off.rates)-median(on.rates))/median(off.rates)*100, "rate-overhead-%")
		b.ReportMetric((median(on.cpuPerReq)-median(off.cpuPerReq))/median(off.cpuPerReq)*100, "cpu-overhead-%")
		b.Logf("req/s on %v, off %v; cpu-us/req on %v, off %v", on.rates, off.rates, on.cpuPerReq, off.cpuPerReq)
	})
}
