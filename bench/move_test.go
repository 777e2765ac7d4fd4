package bench_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/move"
)

// movedDocuments is the size of the tenant moved: documents, each a row of
// the tenant database, all sharing one file.
const movedDocuments = 100_000

// BenchmarkMoveTenant moves a tenant with 100,000 documents between two
// PostgreSQL servers, back and forth, while a client uploads to it without
// pause. It reports how long a move takes, how long the move itself says
// writes were held back, and what the writer saw: the longest time between
// two of its acknowledged uploads over the whole run, which is its longest
// wait for a write since nothing else holds writes back, and how many
// uploads were refused with 503.
func BenchmarkMoveTenant(b *testing.B) {
	second := apptest.RequireSecondServer(b)
	apptest.RequireShape(b, config.Production)
	ctx := context.Background()
	env := apptest.StartShape(b, config.Production)
	reg := env.App.Engines.Servers
	first := apptest.ServerTemplate(b)
	if _, err := reg.Add(ctx, "one", first, 1, nil); err != nil {
		b.Fatal(err)
	}
	owner := env.SignUp(b, "Owner")
	tenantID := env.CreateTenant(b, owner, "Moving")
	if _, err := reg.Add(ctx, "two", second, 1, nil); err != nil {
		b.Fatal(err)
	}
	env.Upload(b, owner, tenantID, "first.txt", []byte("shared content"))
	fillTenant(b, env, first, tenantID, movedDocuments)

	a := env.App
	mover := move.New(a.Engines.Control, a.Engines.Tenants.(move.Engine), a.Engines.Servers, a.Tenants, move.Config{})

	var (
		stop     atomic.Bool
		refused  atomic.Int64
		mu       sync.Mutex
		accepted []time.Time
		wg       sync.WaitGroup
	)
	wg.Go(func() {
		for i := 0; !stop.Load(); i++ {
			res := env.UploadParts(b, owner.AccessToken, tenantID,
				apptest.Part{Name: "file", Filename: fmt.Sprintf("during-%d.txt", i), ContentType: "application/pdf", Body: []byte(fmt.Sprint("during ", i))})
			switch res.Status {
			case http.StatusCreated:
				mu.Lock()
				accepted = append(accepted, time.Now())
				mu.Unlock()
			case http.StatusServiceUnavailable:
				refused.Add(1)
				time.Sleep(10 * time.Millisecond)
			default:
				b.Errorf("upload during the move: %d %s", res.Status, res.Body)
				return
			}
		}
	})

	var took, held time.Duration
	b.ResetTimer()
	for i := range b.N {
		to := "two"
		if i%2 == 1 {
			to = "one"
		}
		res, err := mover.Move(ctx, tenantID, to)
		if err != nil {
			b.Fatal(err)
		}
		took += res.Took
		held += res.WritesHeld
	}
	b.StopTimer()
	time.Sleep(200 * time.Millisecond) // an upload acknowledged after the last switch
	stop.Store(true)
	wg.Wait()

	mu.Lock()
	gap := longestGap(accepted)
	mu.Unlock()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(took.Seconds()/float64(b.N), "move-s/op")
	b.ReportMetric(float64(held.Milliseconds())/float64(b.N), "held-ms/op")
	b.ReportMetric(float64(gap.Milliseconds()), "max-write-gap-ms")
	b.ReportMetric(float64(refused.Load())/float64(b.N), "refused/op")
}

// longestGap returns the longest interval between consecutive times.
func longestGap(times []time.Time) time.Duration {
	var longest time.Duration
	for i := 1; i < len(times); i++ {
		longest = max(longest, times[i].Sub(times[i-1]))
	}
	return longest
}

// fillTenant adds n documents sharing the tenant's first file straight into
// its database on the server of template: uploading them one by one would
// take most of the benchmark's time and measure nothing of the move.
func fillTenant(b *testing.B, env *apptest.Env, template, tenantID string, n int) {
	b.Helper()
	ctx := context.Background()
	var database string
	if err := env.App.Engines.Control.QueryRow(ctx, `SELECT database_name FROM tenants WHERE id = $1`, tenantID).Scan(&database); err != nil {
		b.Fatal(err)
	}
	db, err := pgx.Connect(ctx, strings.ReplaceAll(template, "{database_name}", database))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close(ctx)
	if _, err := db.Exec(ctx, `
		INSERT INTO documents (id, filename, filename_key, mime_type, file_id, user_id, created_at, updated_at)
		SELECT gen_random_uuid(), 'bulk-' || i || '.txt', 'bulk-' || i || '.txt', 'text/plain', f.id, gen_random_uuid(), now(), now()
		FROM generate_series(1, $1) i, (SELECT id FROM files LIMIT 1) f`, n); err != nil {
		b.Fatal(err)
	}
}
