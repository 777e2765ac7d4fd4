package bench_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
)

// purgeDocuments is how many distinct documents each purged tenant holds.
const purgeDocuments = 20

// BenchmarkPurgeTenant measures Lifecycle.Purge of a deleted tenant holding
// purgeDocuments documents of 4 KiB, each its own blob, two members and the
// audit trail of its creation: every step of the purge (inventory, dropping
// the database, deleting the blobs, the control rows and the tombstone in
// one transaction). Creating and deleting each tenant is not timed.
func BenchmarkPurgeTenant(b *testing.B) {
	eachShape(b, func(b *testing.B, shape config.Shape) {
		env := apptest.StartShape(b, shape)
		ctx := b.Context()
		owner := env.SignUp(b, "Owner")
		member := env.SignUp(b, "Member")
		durations := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := range b.N {
			b.StopTimer()
			id := env.CreateTenant(b, owner, fmt.Sprintf("Purged %d", i))
			env.AddMember(b, owner, id, member, "viewer")
			for j := range purgeDocuments {
				body := make([]byte, 4<<10)
				copy(body, fmt.Sprintf("tenant %d document %d", i, j))
				env.Upload(b, owner, id, fmt.Sprintf("doc-%d.bin", j), body)
			}
			env.Do(b, apptest.Request{Method: http.MethodDelete, Path: "/api/tenants/" + id, Token: owner.AccessToken}).
				Expect(b, http.StatusOK, "")
			b.StartTimer()
			start := time.Now()
			p, err := env.App.Lifecycle.Purge(ctx, id)
			if err != nil {
				b.Fatalf("purge tenant %d: %v", i, err)
			}
			durations = append(durations, time.Since(start))
			if p.Removed.Blobs != purgeDocuments {
				b.Fatalf("purge tenant %d removed %d blobs, want %d", i, p.Removed.Blobs, purgeDocuments)
			}
		}
		b.StopTimer()
		reportLatencies(b, durations)
	})
}
