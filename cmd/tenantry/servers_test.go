package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
)

// onServer reports whether a database of that name exists on the server a
// URL template points to.
func onServer(t *testing.T, template, name string) bool {
	t.Helper()
	return apptest.DatabaseExists(t, template, name)
}

// Ensure registered servers take new tenants by weight, each tenant's
// database on its server and working there, that a drained server takes
// none, and that tenants created before any registration stay on the
// default server.
func TestTenantsSpreadAcrossServersByWeight(t *testing.T) {
	second := apptest.RequireSecondServer(t)
	t.Parallel()
	env := apptest.Environ(t, config.Production)
	first := apptest.ServerTemplate(t)
	cfg, err := config.Parse(env)
	if err != nil {
		t.Fatal(err)
	}
	a := apptest.Start(t, cfg)
	owner := a.SignUp(t, "Owner")
	before := a.CreateTenant(t, owner, "Before")

	if code, out := runCLI(t, env, "servers", "add", "one", "--url", first); code != 0 {
		t.Fatalf("servers add one: %d\n%s", code, out)
	}
	if code, out := runCLI(t, env, "servers", "add", "two", "--url", second, "--weight", "2"); code != 0 {
		t.Fatalf("servers add two: %d\n%s", code, out)
	}
	if code, out := runCLI(t, env, "servers", "add", "dead", "--url", "postgres://postgres@127.0.0.1:1/{database_name}?sslmode=disable&connect_timeout=2"); code == 0 {
		t.Fatalf("a server that does not answer was registered:\n%s", out)
	}
	code, out := runCLI(t, env, "servers", "list")
	if code != 0 || !strings.Contains(out, "one") || !strings.Contains(out, "two") || strings.Contains(out, "dead") {
		t.Fatalf("servers list: %d\n%s", code, out)
	}

	where := map[string]int{}
	for i := range 6 {
		id := a.CreateTenant(t, owner, "Spread "+string(rune('a'+i)))
		var server, database string
		if err := a.App.Engines.Control.QueryRow(context.Background(),
			`SELECT COALESCE(server, ''), database_name FROM tenants WHERE id = $1`, id).Scan(&server, &database); err != nil {
			t.Fatal(err)
		}
		where[server]++
		template := map[string]string{"one": first, "two": second}[server]
		if template == "" || !onServer(t, template, database) {
			t.Fatalf("tenant %d placed on %q, its database %s not found there", i, server, database)
		}
		// The database works where it is.
		a.Upload(t, owner, id, "on-"+server+".txt", []byte(server))
		a.Get(t, "/api/tenants/"+id+"/documents", owner.AccessToken).Expect(t, http.StatusOK, "")
	}
	if where["one"] != 2 || where["two"] != 4 {
		t.Fatalf("6 tenants over weights 1 and 2 went %v, want 2 and 4", where)
	}
	var server string
	if err := a.App.Engines.Control.QueryRow(context.Background(), `SELECT COALESCE(server, '') FROM tenants WHERE id = $1`, before).Scan(&server); err != nil || server != "" {
		t.Fatalf("the tenant created before any registration is on %q (%v), want the default server", server, err)
	}
	a.Upload(t, owner, before, "still-here.txt", []byte("default"))

	if code, out := runCLI(t, env, "servers", "drain", "two"); code != 0 {
		t.Fatalf("servers drain: %d\n%s", code, out)
	}
	for range 2 {
		id := a.CreateTenant(t, owner, "After drain")
		if err := a.App.Engines.Control.QueryRow(context.Background(), `SELECT COALESCE(server, '') FROM tenants WHERE id = $1`, id).Scan(&server); err != nil || server != "one" {
			t.Fatalf("a tenant created while two drains went to %q (%v)", server, err)
		}
	}
	if code, out := runCLI(t, env, "servers", "drain", "one"); code != 0 {
		t.Fatalf("servers drain: %d\n%s", code, out)
	}
	a.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/tenants", Token: owner.AccessToken, Body: map[string]string{"name": "Nowhere"}}).
		Expect(t, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE")
}

// Ensure the servers commands belong to the production shape.
func TestServersNeedTheProductionShape(t *testing.T) {
	t.Parallel()
	env := apptest.Environ(t, config.Embedded)
	if code, _ := runCLI(t, env, "migrate"); code != 0 {
		t.Fatal("migrate failed")
	}
	if code, out := runCLI(t, env, "servers", "list"); code == 0 || !strings.Contains(out, "production shape") {
		t.Fatalf("servers list on the embedded shape: %d\n%s", code, out)
	}
}
