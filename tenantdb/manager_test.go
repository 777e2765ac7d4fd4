package tenantdb_test

import (
	"context"
	"testing"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/tenantdb"
)

// Ensure that a transient lease closes the database it opened when it is
// released, and leaves open a database that was already open or that an
// ordinary lease took while it was held.
func TestAcquireTransientClosesWhatItOpened(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		ctx := context.Background()
		env := apptest.StartShape(t, shape)
		var names []string
		for _, name := range []string{"Passed", "Open", "Taken"} {
			tn, err := env.App.Provisioner.Provision(ctx, name, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, tn.DatabaseName)
		}
		passed, open, taken := names[0], names[1], names[2]
		// A manager of its own, so that nothing else holds these
		// databases and none idles out during the test.
		m, err := tenantdb.NewManager(env.App.Engines.Tenants, tenantdb.Config{MaxConns: 8, ConnsPerDB: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Close() })
		use := func(lease *tenantdb.Lease, err error) *tenantdb.Lease {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			var n int64
			if err := lease.DB().QueryRow(ctx, "SELECT value FROM counters WHERE name = 'documents'").Scan(&n); err != nil {
				t.Fatal(err)
			}
			return lease
		}
		expectOpen := func(want int, when string) {
			t.Helper()
			if s := m.Stats(); s.Open != want || s.Leased != 0 {
				t.Fatalf("%s: %d databases open and %d leased, want %d open and none leased", when, s.Open, s.Leased, want)
			}
		}

		use(m.AcquireTransient(ctx, passed)).Release()
		expectOpen(0, "after a transient lease of a closed database")

		use(m.Acquire(ctx, open)).Release()
		use(m.AcquireTransient(ctx, open)).Release()
		expectOpen(1, "after a transient lease of an open database")

		pass := use(m.AcquireTransient(ctx, taken))
		request := use(m.Acquire(ctx, taken))
		pass.Release()
		request.Release()
		expectOpen(2, "after an ordinary lease took a transiently opened database")

		// Reopened, a transiently closed database still works.
		use(m.AcquireTransient(ctx, passed)).Release()
		expectOpen(2, "after a second transient lease")
	})
}
