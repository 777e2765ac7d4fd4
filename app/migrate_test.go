package app_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantry/tenantry/app"
	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/migrate"
	"github.com/tenantry/tenantry/tenantdb"
)

// Several processes migrating one empty control database at once each open
// their own engines; under the schema lock, every migration, the job
// queue's included, is applied exactly once and none of them fails.
func TestControlMigrationsStartedTogetherApplyOnce(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		cfg := apptest.Config(t, shape)
		ctx := context.Background()
		const processes = 5
		migrators := make([]*migrate.Migrator, processes)
		for i := range migrators {
			e, err := app.OpenEngines(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = e.Close() })
			if migrators[i], err = e.ControlMigrator(); err != nil {
				t.Fatal(err)
			}
		}
		pending, err := migrators[0].Pending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := countBySet(pending)
		if want["control database"] == 0 || want["job queue"] == 0 {
			t.Fatalf("an empty database has nothing pending: %v", want)
		}

		var wg sync.WaitGroup
		results := make([][]migrate.Result, processes)
		errs := make([]error, processes)
		for i, mig := range migrators {
			wg.Go(func() { results[i], errs[i] = mig.Up(ctx) })
		}
		wg.Wait()
		got := map[string]int{}
		for i := range processes {
			if errs[i] != nil {
				t.Errorf("process %d: %v", i, errs[i])
			}
			for set, n := range countBySet(results[i]) {
				got[set] += n
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("applied %v in all, want each pending migration once: %v", got, want)
		}
		if current, err := migrators[processes-1].Current(ctx); err != nil || !current {
			t.Fatalf("after the migrations: current %v, %v", current, err)
		}
	})
}

// A tenant database opened by several processes at once is migrated once.
func TestTenantMigrationsStartedTogetherApplyOnce(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		cfg := apptest.Config(t, shape)
		ctx := context.Background()
		const processes = 4
		engines := make([]*app.Engines, processes)
		for i := range engines {
			e, err := app.OpenEngines(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = e.Close() })
			engines[i] = e
		}
		name := tenantdb.Name("Together", uuid.NewString())
		if err := engines[0].Tenants.Create(ctx, tenantdb.Ref{Name: name}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = engines[0].Tenants.Drop(context.Background(), tenantdb.Ref{Name: name}) })

		var wg sync.WaitGroup
		applied := make([]int, processes)
		errs := make([]error, processes)
		for i, e := range engines {
			wg.Go(func() {
				// The smallest pool a tenant database may have.
				db, err := e.Tenants.Open(ctx, tenantdb.Ref{Name: name}, 1)
				if err != nil {
					errs[i] = err
					return
				}
				defer db.Close()
				mig, err := tenantdb.Migrator(e.Tenants, db)
				if err != nil {
					errs[i] = err
					return
				}
				results, err := mig.Up(ctx)
				applied[i], errs[i] = countBySet(results)["tenant database"], err
			})
		}
		wg.Wait()
		total := 0
		for i := range processes {
			if errs[i] != nil {
				t.Errorf("process %d: %v", i, errs[i])
			}
			total += applied[i]
		}
		files, err := fs.Glob(engines[0].Tenants.Migrations(), "*.sql")
		if err != nil {
			t.Fatal(err)
		}
		if total != len(files) {
			t.Fatalf("applied %d migrations in all, want each of the %d once", total, len(files))
		}
	})
}

func countBySet(results []migrate.Result) map[string]int {
	n := map[string]int{}
	for _, r := range results {
		n[r.Set] += len(r.Migrations)
	}
	return n
}

// The schema lock of a database excludes every other holder, whatever
// handle it comes through, until it is released.
func TestSchemaLockExcludesOtherHolders(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		cfg := apptest.Config(t, shape)
		ctx := context.Background()
		var lockers []migrate.Locker
		for range 2 {
			e, err := app.OpenEngines(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = e.Close() })
			lockers = append(lockers, e.Control.(migrate.Locker))
		}
		unlock, err := lockers[0].LockSchema(ctx)
		if err != nil {
			t.Fatal(err)
		}
		waitCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		if unlock2, err := lockers[1].LockSchema(waitCtx); err == nil {
			_ = unlock2()
			t.Fatal("a second holder took the schema lock while the first held it")
		} else if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("waiting for the schema lock: %v", err)
		}
		if err := unlock(); err != nil {
			t.Fatal(err)
		}
		unlock, err = lockers[1].LockSchema(ctx)
		if err != nil {
			t.Fatalf("the schema lock once released: %v", err)
		}
		if err := unlock(); err != nil {
			t.Fatal(err)
		}
	})
}
