package main

import (
	"context"
	"strings"
	"testing"

	"github.com/tenantry/tenantry/app"
	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
)

// `tenantry migrate` applies the job queue's migrations with the control
// database's, and its --dry-run and --history report both.
func TestMigrateCoversTheJobQueue(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.Environ(t, shape)

		for range 2 { // a dry run changes nothing, so twice gives the same answer
			code, out := runCLI(t, env, "migrate", "--dry-run")
			if code != 0 ||
				!strings.Contains(out, "control database: would apply 00001_accounts_and_tenants.sql") ||
				!strings.Contains(out, "job queue: would apply 001_create_river_migration") ||
				!strings.Contains(out, "job queue: would apply 002_initial_schema") {
				t.Fatalf("migrate --dry-run on an empty database (%d):\n%s", code, out)
			}
		}
		if code, out := runCLI(t, env, "migrate", "--history"); code != 0 ||
			!strings.Contains(out, "control database: no migrations applied") || !strings.Contains(out, "job queue: no migrations applied") {
			t.Fatalf("migrate --history on an empty database (%d):\n%s", code, out)
		}

		code, out := runCLI(t, env, "migrate")
		if code != 0 || !strings.Contains(out, "control database: applied 00001_accounts_and_tenants.sql") ||
			!strings.Contains(out, "job queue: applied 001_create_river_migration") {
			t.Fatalf("migrate (%d):\n%s", code, out)
		}
		code, out = runCLI(t, env, "migrate")
		if code != 0 || out != "control database: up to date\njob queue: up to date\n" {
			t.Fatalf("migrate again (%d):\n%s", code, out)
		}
		code, out = runCLI(t, env, "migrate", "--dry-run")
		if code != 0 || out != "control database: up to date\njob queue: up to date\n" {
			t.Fatalf("migrate --dry-run after migrating (%d):\n%s", code, out)
		}
		code, out = runCLI(t, env, "migrate", "--history")
		if code != 0 || !strings.Contains(out, "control database: 00001_accounts_and_tenants.sql applied at ") ||
			!strings.Contains(out, "job queue: 001_create_river_migration applied at ") ||
			strings.Contains(out, "applied at 0001-01-01") {
			t.Fatalf("migrate --history (%d):\n%s", code, out)
		}

		// The job queue's tables are there: the queue inserts.
		cfg, err := config.Parse(env)
		if err != nil {
			t.Fatal(err)
		}
		engines, err := app.OpenEngines(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer engines.Close()
		var jobs int
		if err := engines.Control.QueryRow(context.Background(), "SELECT count(*) FROM river_job").Scan(&jobs); err != nil {
			t.Fatalf("the job queue's table after `tenantry migrate`: %v", err)
		}
	})
}
