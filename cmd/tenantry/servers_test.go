package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tenantry/tenantry/app"
	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/keyring"
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

// A registered server's connection string, password included, is kept
// sealed: neither the control database nor any command shows the password,
// tenants placed there still work, and a key rotation moves the sealed
// string to the new key version, which `keys status` confirms.
func TestServerPasswordsAreSealed(t *testing.T) {
	t.Parallel()
	env := apptest.Environ(t, config.Production)
	const password = "Sealed-Passw0rd-Of-The-Server"
	u, err := url.Parse(apptest.ServerTemplate(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), password)
	template := strings.ReplaceAll(u.String(), "%7Bdatabase_name%7D", "{database_name}")
	if code, out := runCLI(t, env, "migrate"); code != 0 {
		t.Fatalf("migrate: %s", out)
	}
	if code, out := runCLI(t, env, "servers", "add", "secret", "--url", template); code != 0 || strings.Contains(out, password) {
		t.Fatalf("servers add: %d\n%s", code, out)
	}
	if code, out := runCLI(t, env, "servers", "list"); code != 0 || strings.Contains(out, password) || !strings.Contains(out, "secret") {
		t.Fatalf("servers list: %d\n%s", code, out)
	}

	// A rotation whose re-sealing has not run yet, in a process without
	// workers, leaves the string on the older version; the rotate command
	// moves it.
	withApp(t, env, func(a *app.App) {
		var stored string
		var sealed []byte
		if err := a.Engines.Control.QueryRow(context.Background(),
			`SELECT url_template, url_template_sealed FROM tenant_servers WHERE name = 'secret'`).Scan(&stored, &sealed); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(stored, password) || bytes.Contains(sealed, []byte(password)) || len(sealed) == 0 {
			t.Fatalf("the control database holds the password in clear: %q, %x", stored, sealed)
		}
		if _, err := a.Keys.Rotate(context.Background(), keyring.Platform); err != nil {
			t.Fatal(err)
		}
	})
	code, out := runCLI(t, env, "keys", "status")
	if code != 0 || !strings.Contains(strings.Join(strings.Fields(out), " "), "tenant_servers.url_template_sealed platform 1 1") {
		t.Fatalf("keys status does not show the string on version 1: %d\n%s", code, out)
	}
	if code, out := runCLI(t, env, "keys", "rotate"); code != 0 || !strings.Contains(out, "moved 1 stored secrets") {
		t.Fatalf("keys rotate: %d\n%s", code, out)
	}
	if code, out := runCLI(t, env, "keys", "status"); code != 0 || !strings.Contains(out, "every stored secret is sealed with its scope's newest key version") {
		t.Fatalf("keys status after the rotation: %d\n%s", code, out)
	}

	cfg, err := config.Parse(env)
	if err != nil {
		t.Fatal(err)
	}
	a := apptest.Start(t, cfg)
	owner := a.SignUp(t, "Owner")
	id := a.CreateTenant(t, owner, "On the sealed server")
	var server string
	if err := a.App.Engines.Control.QueryRow(context.Background(), `SELECT COALESCE(server, '') FROM tenants WHERE id = $1`, id).Scan(&server); err != nil || server != "secret" {
		t.Fatalf("the tenant went to %q (%v)", server, err)
	}
	a.Upload(t, owner, id, "works.txt", []byte("placed on a server whose string is sealed"))
}

// withApp runs fn with the application of env, without its workers.
func withApp(t *testing.T, env map[string]string, fn func(*app.App)) {
	t.Helper()
	cfg, err := config.Parse(env)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(context.Background(), cfg, slog.New(slog.DiscardHandler), "test")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	fn(a)
}
