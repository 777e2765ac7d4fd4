package app_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/tenant"
	"github.com/tenantry/tenantry/tenantdb"
)

// Ensure that however many tenants exist, the databases held open for them
// never exceed the configured cap, counted both by the manager and by the
// operating system (database files held open, one per connection) or the
// server (backends).
func TestTenantDatabasesStayUnderTheCap(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		tenants, cap := 2000, 16
		if shape == config.Production {
			tenants, cap = 200, 8
		}
		if testing.Short() {
			tenants /= 10
		}
		cfg := apptest.Config(t, shape)
		cfg.TenantDBMaxConns = cap
		env := apptest.Start(t, cfg)
		a := env.App
		ctx := context.Background()

		created := provisionMany(t, a.Provisioner, tenants)
		names := make([]string, len(created))
		for i, tn := range created {
			names[i] = tn.DatabaseName
		}

		observe := resourceObserver(t, shape, cfg, names)
		var (
			maxReserved, maxConns, maxSeen atomic.Int64
			stop                           = make(chan struct{})
			sampled                        sync.WaitGroup
			// Listing open files is not atomic: a descriptor closed and
			// reused during the scan would make one scan see two moments.
			// The system is therefore observed only while no worker is
			// inside the manager; the manager's own accounting is sampled
			// all along.
			quiet sync.RWMutex
		)
		sampled.Go(func() {
			for i := 0; ; i++ {
				s := a.Tenants.Stats()
				raise(&maxReserved, int64(s.Reserved))
				raise(&maxConns, int64(s.Connections))
				if i%5 == 0 {
					quiet.Lock()
					raise(&maxSeen, int64(observe()))
					quiet.Unlock()
				}
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
				}
			}
		})

		const workers = 8
		var used atomic.Int64
		var work sync.WaitGroup
		for w := range workers {
			work.Go(func() {
				for pass := 0; pass < 2; pass++ {
					for i := w; i < len(names); i += workers {
						quiet.RLock()
						lease, err := a.Tenants.Acquire(ctx, tenantdb.Ref{Name: names[i]})
						if err != nil {
							quiet.RUnlock()
							t.Errorf("acquire %s: %v", names[i], err)
							return
						}
						var n int64
						err = lease.DB().QueryRow(ctx, "SELECT value FROM counters WHERE name = 'documents'").Scan(&n)
						lease.Release()
						quiet.RUnlock()
						if err != nil {
							t.Errorf("query %s: %v", names[i], err)
							return
						}
						used.Add(1)
					}
				}
			})
		}
		work.Wait()
		close(stop)
		sampled.Wait()

		if got, want := used.Load(), int64(2*len(names)); got != want {
			t.Fatalf("used %d tenant databases, want %d", got, want)
		}
		t.Logf("%d tenants, cap %d: max reserved %d, max connections %d, max seen by the %s %d",
			len(names), cap, maxReserved.Load(), maxConns.Load(), observer(shape), maxSeen.Load())
		if maxReserved.Load() > int64(cap) || maxConns.Load() > int64(cap) || maxSeen.Load() > int64(cap) {
			t.Fatalf("the cap of %d was exceeded", cap)
		}
		if maxSeen.Load() == 0 {
			t.Fatal("the observer never saw an open tenant database; it observes nothing")
		}
	})
}

func observer(shape config.Shape) string {
	if shape == config.Production {
		return "server"
	}
	return "operating system"
}

func raise(v *atomic.Int64, n int64) {
	for {
		cur := v.Load()
		if n <= cur || v.CompareAndSwap(cur, n) {
			return
		}
	}
}

// provisionMany creates n tenants, four at a time.
func provisionMany(t *testing.T, p *tenant.Provisioner, n int) []*tenantry.Tenant {
	t.Helper()
	out := make([]*tenantry.Tenant, n)
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || t.Failed() {
					return
				}
				tn, err := p.Provision(context.Background(), fmt.Sprintf("Tenant %d", i), "", nil)
				if err != nil {
					t.Errorf("provision tenant %d: %v", i, err)
					return
				}
				out[i] = tn
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return out
}

// resourceObserver returns a function counting the tenant databases that
// are open right now as the system sees them: distinct database files among
// this process's descriptors for SQLite, backends connected to them for
// PostgreSQL.
func resourceObserver(t *testing.T, shape config.Shape, cfg config.Config, names []string) func() int {
	t.Helper()
	if shape == config.Production {
		conn, err := pgx.Connect(context.Background(), cfg.DatabaseURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		var mu sync.Mutex
		return func() int {
			mu.Lock()
			defer mu.Unlock()
			var n int
			if err := conn.QueryRow(context.Background(),
				"SELECT count(*) FROM pg_stat_activity WHERE datname = ANY($1)", names).Scan(&n); err != nil {
				t.Errorf("count backends: %v", err)
			}
			return n
		}
	}
	dir := filepath.Join(cfg.DataDir, "tenants") + string(filepath.Separator)
	if _, err := os.ReadDir("/proc/self/fd"); err != nil {
		t.Skipf("cannot list this process's open files: %v", err)
	}
	return func() int {
		fds, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Errorf("list open files: %v", err)
			return 0
		}
		// Every connection to a SQLite database holds the database file
		// open; its -wal and -shm files are not counted.
		conns := 0
		for _, fd := range fds {
			target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
			if err == nil && strings.HasPrefix(target, dir) && strings.HasSuffix(target, ".db") {
				conns++
			}
		}
		return conns
	}
}
