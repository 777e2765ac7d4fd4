package main

import (
	"fmt"
	"maps"
	"net/http"
	"testing"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
)

// Three serve and two worker processes started at the same moment on an
// empty PostgreSQL database all become ready: whichever of them migrates
// first, the others wait for it instead of colliding with its schema
// changes. The collision can only happen while the schema is being created,
// so each round starts on an empty database of its own.
func TestConcurrentStartOnAnEmptyDatabase(t *testing.T) {
	t.Parallel()
	apptest.RequireShape(t, config.Production)
	for round := range 10 {
		t.Run(fmt.Sprintf("round %d", round+1), func(t *testing.T) {
			startTogether(t, apptest.Environ(t, config.Production), 3, 2)
		})
	}
}

// After `tenantry migrate` on an empty database, nothing is left for
// processes started at once to migrate, the job queue's tables included.
func TestConcurrentStartAfterMigrate(t *testing.T) {
	t.Parallel()
	apptest.RequireShape(t, config.Production)
	for round := range 3 {
		t.Run(fmt.Sprintf("round %d", round+1), func(t *testing.T) {
			env := apptest.Environ(t, config.Production)
			if code, out := runCLI(t, env, "migrate"); code != 0 {
				t.Fatalf("migrate (%d):\n%s", code, out)
			}
			startTogether(t, env, 3, 2)
		})
	}
}

// startTogether starts serves serve and workers worker processes on env at
// the same moment and waits until every one is ready: a serve answers
// GET /ready with 200, a worker logs that it runs.
func startTogether(t *testing.T, env map[string]string, serves, workers int) {
	t.Helper()
	serveEnv := maps.Clone(env)
	serveEnv["TENANTRY_ADDR"] = "127.0.0.1:0"
	var started []*process
	for range serves {
		started = append(started, launchProcess(t, serveEnv, "serve"))
	}
	for range workers {
		started = append(started, launchProcess(t, env, "worker"))
	}
	for _, p := range started[:serves] {
		p.awaitLog(t, "tenantry listening")
		p.addr, _ = listeningAddr(t, p.logs)
		res, err := http.Get(p.url("/ready"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET /ready = %d\n%s", res.StatusCode, p.logs.String())
		}
	}
	for _, p := range started[serves:] {
		p.awaitLog(t, "tenantry worker running")
	}
}
