package bench_test

import (
	"testing"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/tenantdb"
)

// BenchmarkIdleTenantDatabaseMemory measures what one open but idle tenant
// database costs this process, in resident memory and in Go heap: the
// figure that, times the tenant database cap, bounds the memory a process
// spends on keeping tenants warm. In the production shape it counts the
// client side only (a pgx pool holding one connection); the server's backend
// process for that connection is not included.
//
// It is a one-shot measurement that ignores b.N: run it with -benchtime 1x.
func BenchmarkIdleTenantDatabaseMemory(b *testing.B) {
	eachShape(b, func(b *testing.B, shape config.Shape) {
		tenants, connsPerDB := 300, 1
		if shape == config.Production {
			// Each open database holds a server connection; 60 leaves room
			// in a default max_connections of 100.
			tenants, connsPerDB = 60, 2
		}
		ctx := b.Context()
		env := apptest.StartShape(b, shape)
		created := provisionMany(b, env.App.Provisioner, tenants)
		// The app's own manager keeps the last provisioned databases open;
		// closing it leaves the measured manager the only one holding any.
		if err := env.App.Tenants.Close(); err != nil {
			b.Fatal(err)
		}

		// A manager of its own, with room for every tenant and no idle
		// timeout, so that nothing is open before and nothing is evicted
		// during the measurement.
		m, err := tenantdb.NewManager(env.App.Engines.Tenants, tenantdb.Config{
			MaxConns:   tenants * connsPerDB,
			ConnsPerDB: connsPerDB,
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = m.Close() })

		before := measureMemory(b)
		for _, tn := range created {
			lease, err := m.Acquire(ctx, tenantdb.Ref{Name: tn.DatabaseName})
			if err != nil {
				b.Fatalf("acquire %s: %v", tn.DatabaseName, err)
			}
			var n int64
			err = lease.DB().QueryRow(ctx, "SELECT value FROM counters WHERE name = 'documents'").Scan(&n)
			lease.Release()
			if err != nil {
				b.Fatalf("query %s: %v", tn.DatabaseName, err)
			}
		}
		after := measureMemory(b)

		s := m.Stats()
		if s.Open != tenants || s.Leased != 0 {
			b.Fatalf("%d databases open and %d leased after the loop, want %d open and none leased", s.Open, s.Leased, tenants)
		}
		b.Logf("%d idle tenant databases holding %d connections: RSS %d -> %d bytes, heap in use %d -> %d bytes, live heap %d -> %d bytes",
			s.Open, s.Connections, before.rss, after.rss, before.heapInuse, after.heapInuse, before.heapAlloc, after.heapAlloc)
		perDB := func(before, after int64) float64 { return float64(after-before) / float64(tenants) }
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(perDB(before.rss, after.rss), "rss-bytes/db")
		b.ReportMetric(perDB(before.heapInuse, after.heapInuse), "heap-bytes/db")
		b.ReportMetric(perDB(before.heapAlloc, after.heapAlloc), "live-heap-bytes/db")
	})
}
