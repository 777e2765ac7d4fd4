package api_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/tenantdb"
)

// tenantDatabase returns the name of a tenant's database.
func tenantDatabase(t *testing.T, env *apptest.Env, tenantID string) string {
	t.Helper()
	var name string
	if err := env.App.Engines.Control.QueryRow(context.Background(), `SELECT database_name FROM tenants WHERE id = $1`, tenantID).Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}

// expectUnavailable checks a 503 in the envelope with a usable Retry-After.
func expectUnavailable(t *testing.T, res *apptest.Response) {
	t.Helper()
	res.Expect(t, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE")
	if ra, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Fatalf("Retry-After = %q", res.Header.Get("Retry-After"))
	}
}

// outageLogLines counts the log lines reporting the named database down.
func outageLogLines(t *testing.T, env *apptest.Env, database string) (outages, internal int) {
	t.Helper()
	for _, r := range env.Logs.Records(t) {
		if r["msg"] == "tenant database unavailable" && r["database"] == database {
			outages++
		}
		if r["msg"] == "internal error" || r["level"] == "ERROR" && r["msg"] == "request" {
			internal++
		}
	}
	return outages, internal
}

// moveAside makes a tenant's database disappear, as a lost volume or a
// dropped database would, and returns how to bring it back. The server's
// own handles on it are closed, since background work may have opened it
// again at any moment; the loss of one held open is tested separately.
func moveAside(t *testing.T, env *apptest.Env, shape config.Shape, database string) (restore func()) {
	t.Helper()
	ctx := context.Background()
	forget := func() {
		if err := env.App.Tenants.Forget(ctx, tenantdb.Ref{Name: database}); err != nil {
			t.Fatal(err)
		}
	}
	if shape == config.Embedded {
		path := filepath.Join(env.App.Config.DataDir, "tenants", database+".db")
		if err := os.Rename(path, path+".aside"); err != nil {
			t.Fatal(err)
		}
		// A handle opened before the rename follows the file; one
		// opened after it finds nothing.
		forget()
		return func() {
			if err := os.Rename(path+".aside", path); err != nil {
				t.Fatal(err)
			}
		}
	}
	admin, err := pgx.Connect(ctx, env.App.Config.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(ctx) })
	rename := func(from, to string) error {
		_, err := admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{from}.Sanitize()+" RENAME TO "+pgx.Identifier{to}.Sanitize())
		return err
	}
	aside := strings.Replace(database, "tenant_", "aside_", 1)
	t.Cleanup(func() {
		_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{aside}.Sanitize()+" WITH (FORCE)")
	})
	// PostgreSQL renames only a database nobody is connected to.
	for attempt := 0; ; attempt++ {
		forget()
		err := rename(database, aside)
		var pgErr *pgconn.PgError
		if err == nil {
			break
		} else if !errors.As(err, &pgErr) || pgErr.Code != "55006" || attempt == 50 {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return func() {
		if err := rename(aside, database); err != nil {
			t.Fatal(err)
		}
	}
}

// Ensure a tenant whose database is missing answers 503 with Retry-After on
// its routes, logged once however many requests meet it, while other
// tenants and readiness are unaffected, and that it serves again once its
// database is back.
func TestMissingTenantDatabaseIsThatTenantsProblemOnly(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		cfg := apptest.Config(t, shape)
		cfg.TenantDBRetryAfter = time.Second
		env := apptest.Start(t, cfg)
		u := env.SignUp(t, "Owner")
		broken := env.CreateTenant(t, u, "Broken")
		healthy := env.CreateTenant(t, u, "Healthy")
		env.Upload(t, u, broken, "kept.txt", []byte("kept"))
		env.Upload(t, u, healthy, "other.txt", []byte("other"))
		database := tenantDatabase(t, env, broken)

		restore := moveAside(t, env, shape, database)
		for _, path := range []string{"/documents", "/files", "/storage", "/events"} {
			for range 2 {
				expectUnavailable(t, env.Get(t, "/api/tenants/"+broken+path, u.AccessToken))
			}
		}
		env.Get(t, "/api/tenants/"+healthy+"/documents", u.AccessToken).Expect(t, http.StatusOK, "")
		env.Get(t, "/ready", "").Expect(t, http.StatusOK, "")
		// The tenant's own record lives in the control database.
		env.Get(t, "/api/tenants/"+broken, u.AccessToken).Expect(t, http.StatusOK, "")
		if outages, internal := outageLogLines(t, env, database); outages != 1 || internal != 0 {
			t.Fatalf("8 requests to a missing database logged %d outage lines and %d internal errors, want 1 and 0\n%s", outages, internal, env.Logs.String())
		}

		restore()
		deadline := time.Now().Add(10 * time.Second)
		for {
			res := env.Get(t, "/api/tenants/"+broken+"/documents", u.AccessToken)
			if res.Status == http.StatusOK {
				var list struct {
					Documents []apptest.Document `json:"documents"`
				}
				res.Data(t, &list)
				if len(list.Documents) != 1 || list.Documents[0].Filename != "kept.txt" {
					t.Fatalf("after the database came back: %s", res.Body)
				}
				break
			}
			expectUnavailable(t, res)
			if time.Now().After(deadline) {
				t.Fatal("the tenant did not serve again within 10 s of its database coming back")
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// Ensure a PostgreSQL tenant database lost while its pool is open (dropped
// behind the server's back) answers 503, not 500, and is logged once.
func TestTenantDatabaseLostWhileOpen(t *testing.T) {
	apptest.RequireShape(t, config.Production)
	t.Parallel()
	env := apptest.StartShape(t, config.Production)
	u := env.SignUp(t, "Owner")
	tenantID := env.CreateTenant(t, u, "Lost")
	env.Upload(t, u, tenantID, "a.txt", []byte("a"))
	database := tenantDatabase(t, env, tenantID)
	if err := env.App.Engines.Tenants.Drop(context.Background(), tenantdb.Ref{Name: database}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		expectUnavailable(t, env.Get(t, "/api/tenants/"+tenantID+"/documents", u.AccessToken))
	}
	if outages, internal := outageLogLines(t, env, database); outages != 1 || internal != 0 {
		t.Fatalf("3 requests to a dropped database logged %d outage lines and %d internal errors, want 1 and 0\n%s", outages, internal, env.Logs.String())
	}
	env.Get(t, "/ready", "").Expect(t, http.StatusOK, "")
}
