package tenantdb_test

import (
	"context"
	"errors"
	"testing"
	"time"

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

		use(m.AcquireTransient(ctx, tenantdb.Ref{Name: passed})).Release()
		expectOpen(0, "after a transient lease of a closed database")

		use(m.Acquire(ctx, tenantdb.Ref{Name: open})).Release()
		use(m.AcquireTransient(ctx, tenantdb.Ref{Name: open})).Release()
		expectOpen(1, "after a transient lease of an open database")

		pass := use(m.AcquireTransient(ctx, tenantdb.Ref{Name: taken}))
		request := use(m.Acquire(ctx, tenantdb.Ref{Name: taken}))
		pass.Release()
		request.Release()
		expectOpen(2, "after an ordinary lease took a transiently opened database")

		// Reopened, a transiently closed database still works.
		use(m.AcquireTransient(ctx, tenantdb.Ref{Name: passed})).Release()
		expectOpen(2, "after a second transient lease")
	})
}

// Ensure the cap on open databases holds per server: a full server makes
// only its own tenants wait.
func TestTheCapHoldsPerServer(t *testing.T) {
	second := apptest.RequireSecondServer(t)
	t.Parallel()
	ctx := context.Background()
	env := apptest.StartShape(t, config.Production)
	registry := env.App.Engines.Servers
	for name, template := range map[string]string{"one": apptest.ServerTemplate(t), "two": second} {
		if _, err := registry.Add(ctx, name, template, 1, nil); err != nil {
			t.Fatal(err)
		}
	}
	byServer := map[string][]tenantdb.Ref{}
	for _, name := range []string{"A", "B", "C", "D", "E"} {
		tn, err := env.App.Provisioner.Provision(ctx, name, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		byServer[tn.Server] = append(byServer[tn.Server], tenantdb.RefOf(tn))
	}
	one, two := byServer["one"], byServer["two"]
	if len(one) != 3 || len(two) != 2 {
		t.Fatalf("5 tenants over two servers of equal weight: %d and %d", len(one), len(two))
	}
	// Two databases of two connections fit under each server's cap of 4.
	m, err := tenantdb.NewManager(env.App.Engines.Tenants, tenantdb.Config{MaxConns: 4, ConnsPerDB: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	var held []*tenantdb.Lease
	for _, ref := range []tenantdb.Ref{one[0], one[1], two[0], two[1]} {
		lease, err := m.Acquire(ctx, ref)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		held = append(held, lease)
	}
	if s := m.Stats(); s.Open != 4 || s.Reserved != 8 {
		t.Fatalf("4 databases on two servers: %+v", s)
	}
	// Server one is full: its third tenant waits, and gets its slot when
	// one of the server's own databases is released.
	waiting, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := m.Acquire(waiting, one[2]); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a third database on a full server: %v, want to wait", err)
	}
	held[2].Release() // server two's: frees nothing on one
	waiting, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := m.Acquire(waiting, one[2]); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a slot freed on server two let a third database open on one: %v", err)
	}
	held[0].Release()
	lease, err := m.Acquire(ctx, one[2])
	if err != nil {
		t.Fatal(err)
	}
	lease.Release()
	for _, l := range held {
		l.Release()
	}
}
