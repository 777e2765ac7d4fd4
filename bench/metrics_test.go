package bench_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tenantry/tenantry/app"
	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
)

// BenchmarkGetMeMetrics measures what recording metrics costs the cheapest
// authenticated request, GET /api/users/me, inside one process: two apps,
// one with metrics on (as users run it) and one with
// TENANTRY_METRICS_ADDR=off, both logging at the default info level to
// nowhere, have their handlers called directly, in alternation, and each
// call is timed. Without a network, a load generator or a second process in
// the way, and with both sides taking turns through every drift in the
// shared machine's speed, the two differ by what metrics cost and little
// else, which a load test on a shared two-core machine cannot resolve to a
// few percent. It reports each side's mean time per request and the
// overhead in percent.
func BenchmarkGetMeMetrics(b *testing.B) {
	eachShape(b, func(b *testing.B, shape config.Shape) {
		type side struct {
			req     *http.Request
			handler http.Handler
			spent   time.Duration
		}
		newSide := func(metricsAddr string) *side {
			cfg := apptest.Config(b, shape)
			if metricsAddr != "" {
				cfg.MetricsAddr = metricsAddr
			}
			logger := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
			a, err := app.New(context.Background(), cfg, logger, "bench")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { a.Close() })
			req := httptest.NewRequest(http.MethodGet, "/api/users/me", nil)
			req.Header.Set("Authorization", "Bearer "+signUpInProcess(b, a))
			return &side{req: req, handler: a.Server}
		}
		on, off := newSide(""), newSide(config.MetricsOff)
		serve := func(s *side) {
			rec := httptest.NewRecorder()
			start := time.Now()
			s.handler.ServeHTTP(rec, s.req)
			s.spent += time.Since(start)
			if rec.Code != http.StatusOK {
				b.Fatalf("GET /api/users/me: %d %s", rec.Code, rec.Body)
			}
		}
		// Warm both up: connections, caches, the heap's size.
		for range 2000 {
			serve(on)
			serve(off)
		}
		on.spent, off.spent = 0, 0
		b.ResetTimer()
		for i := range b.N {
			// Take turns at going first, too.
			if i%2 == 0 {
				serve(on)
				serve(off)
			} else {
				serve(off)
				serve(on)
			}
		}
		perOp := func(s *side) float64 { return float64(s.spent.Nanoseconds()) / float64(b.N) }
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(perOp(on), "ns/req-on")
		b.ReportMetric(perOp(off), "ns/req-off")
		b.ReportMetric((perOp(on)-perOp(off))/perOp(off)*100, "overhead-%")
	})
}

// signUpInProcess registers and signs in a user through the handler and
// returns the access token.
func signUpInProcess(b *testing.B, a *app.App) string {
	b.Helper()
	post := func(path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		a.Server.ServeHTTP(rec, req)
		return rec
	}
	creds := `{"email":"me@example.com","password":"correct-horse-7"}`
	if rec := post("/api/auth/register", `{"first_name":"M","last_name":"E",`+creds[1:]); rec.Code != http.StatusCreated {
		b.Fatalf("register: %d %s", rec.Code, rec.Body)
	}
	rec := post("/api/auth/login", creds)
	if rec.Code != http.StatusOK {
		b.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	var data struct {
		AccessToken string `json:"access_token"`
	}
	decodeData(b, rec.Body.Bytes(), &data)
	return data.AccessToken
}
