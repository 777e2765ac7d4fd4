//go:build unix

package bench_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/tenantry/tenantry/app"
	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
)

// BenchmarkRequestCost measures the server's own work for one authenticated
// request (routing, authentication, authorization, the handler and the
// encoding of its answer) by calling the HTTP handler in the benchmark's
// process, one request after another, with no network and no load
// generator: time, CPU time and allocations per request. The throughput benchmarks
// vary by a third between runs of the same code on a shared two-core
// machine; this one varies by a few percent, which is what comparing two
// versions of the request path needs (run both alternately with -count and
// compare with benchstat).
//
// The routes are GET /api/users/me, the cheapest authenticated request, and
// the first page of a tenant's documents, the cheapest that goes through a
// tenant permission check. The tenant holds documentsPerPage documents, so
// that the listing's own work does not hide what authorization costs.
func BenchmarkRequestCost(b *testing.B) {
	eachShape(b, func(b *testing.B, shape config.Shape) {
		env, handler := startInProcess(b, shape)
		u := env.SignUp(b, "Cost")
		tenantID := env.CreateTenant(b, u, "Cost")
		for i := range documentsPerPage {
			env.Upload(b, u, tenantID, fmt.Sprintf("cost-%02d.txt", i), fmt.Appendf(nil, "document %d", i))
		}
		// What the uploads set off in the background (events, counters)
		// settles before anything is measured.
		time.Sleep(2 * time.Second)
		routes := []struct{ name, path string }{
			{"me", "/api/users/me"},
			{"documents", "/api/tenants/" + tenantID + "/documents"},
		}
		for _, route := range routes {
			b.Run(route.name, func(b *testing.B) {
				b.ReportAllocs()
				cpuBefore := processCPUTime(b)
				for b.Loop() {
					req := httptest.NewRequest(http.MethodGet, route.path, nil)
					req.Header.Set("Authorization", "Bearer "+u.AccessToken)
					rec := httptest.NewRecorder()
					handler.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Fatalf("GET %s: %d %s", route.path, rec.Code, rec.Body)
					}
				}
				cpu := processCPUTime(b) - cpuBefore
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
			})
		}
	})
}

// processCPUTime is the CPU time this process has used so far, user and
// system, every thread included. Unlike the elapsed time it leaves out
// what other processes and the hypervisor take from the benchmark.
func processCPUTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// documentsPerPage is the listing's default page size.
const documentsPerPage = 20

// startInProcess starts tenantry for shape in this process, logging warnings
// only, as BenchmarkGetMe's quiet variant does. The Env serves the setup's
// requests over loopback; the handler is what the benchmark calls directly.
func startInProcess(b *testing.B, shape config.Shape) (*apptest.Env, http.Handler) {
	b.Helper()
	logger := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := app.New(context.Background(), apptest.Config(b, shape), logger, "bench")
	if err != nil {
		b.Fatalf("start tenantry: %v", err)
	}
	if err := a.Start(context.Background()); err != nil {
		a.Close()
		b.Fatalf("start tenantry: %v", err)
	}
	srv := httptest.NewServer(a.Server)
	b.Cleanup(func() {
		srv.Close()
		if err := a.Close(); err != nil {
			b.Logf("closing tenantry: %v", err)
		}
	})
	return &apptest.Env{App: a, Server: srv, URL: srv.URL, Logs: &apptest.LogBuffer{}}, a.Server
}
