package bench_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
)

// BenchmarkProvisionTenant measures Provisioner.Provision, one tenant after
// another in one running app: the pending row, creating the database,
// migrating it to the latest tenant schema through the tenant database
// manager and activating the row. That is the time POST /api/tenants spends
// beyond authentication and encoding.
func BenchmarkProvisionTenant(b *testing.B) {
	eachShape(b, func(b *testing.B, shape config.Shape) {
		cfg := apptest.Config(b, shape)
		// apptest keeps connection caps small for parallel tests; the
		// benchmark runs alone, with the caps a real server starts with.
		cfg.TenantDBMaxConns, cfg.TenantDBConnsPerTenant = 0, 0
		cfg.WithDefaults()
		p := apptest.Start(b, cfg).App.Provisioner
		ctx := b.Context()
		durations := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := range b.N {
			start := time.Now()
			if _, err := p.Provision(ctx, fmt.Sprintf("Tenant %d", i), "", nil); err != nil {
				b.Fatalf("provision tenant %d: %v", i, err)
			}
			durations = append(durations, time.Since(start))
		}
		b.StopTimer()
		reportLatencies(b, durations)
	})
}
