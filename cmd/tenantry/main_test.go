package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/app"
	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/tenantdb"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// listeningAddr waits for serve's "tenantry listening" log line.
func listeningAddr(t *testing.T, logs *syncBuffer) (addr, dataDir string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "tenantry listening" {
				dir, _ := line["data_dir"].(string)
				return line["addr"].(string), dir
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("serve never logged where it listens:\n%s", logs.String())
	return "", ""
}

func TestServeFromACleanDirectory(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "data")
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var stdout, stderr syncBuffer
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"serve"}, map[string]string{"TENANTRY_DATA_DIR": dataDir, "TENANTRY_ADDR": "127.0.0.1:0"}, strings.NewReader(""), &stdout, &stderr)
	}()
	addr, loggedDir := listeningAddr(t, &stderr)
	if abs, _ := filepath.Abs(dataDir); loggedDir != abs {
		t.Errorf("logged data_dir = %q, want %q", loggedDir, abs)
	}
	res, err := http.Get("http://" + addr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("GET /health = %d", res.StatusCode)
	}
	for _, p := range []string{"control.db", "tenants", "secrets/jwt_secret"} {
		if _, err := os.Stat(filepath.Join(dataDir, p)); err != nil {
			t.Errorf("data directory lacks %s: %v", p, err)
		}
	}
	stop()
	select {
	case code := <-exited:
		if code != 0 {
			t.Fatalf("serve exited %d:\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"version"}, map[string]string{}, strings.NewReader(""), &stdout, &stderr); code != 0 || !strings.HasPrefix(stdout.String(), "tenantry ") {
		t.Fatalf("version: %d %q %q", code, stdout.String(), stderr.String())
	}
}

func runCLI(t *testing.T, env map[string]string, args ...string) (int, string) {
	t.Helper()
	return runCLIWithInput(t, env, "", args...)
}

func runCLIWithInput(t *testing.T, env map[string]string, stdin string, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, env, strings.NewReader(stdin), &stdout, &stderr)
	return code, stdout.String() + stderr.String()
}

func TestMigrateTenants(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.Environ(t, shape)
		cfg, err := config.Parse(env)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		a, err := app.New(ctx, cfg, slog.New(slog.DiscardHandler), "test")
		if err != nil {
			t.Fatal(err)
		}
		var tenants []*tenantry.Tenant
		for _, name := range []string{"Alpha", "Beta", "Gamma"} {
			tn, err := a.Provisioner.Provision(ctx, name, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			tenants = append(tenants, tn)
		}
		a.Close()
		alpha, beta, gamma := tenants[0], tenants[1], tenants[2]

		latest := latestTenantMigration(t, cfg)
		code, out := runCLI(t, env, "migrate", "tenants", "--history")
		if code != 0 || strings.Count(out, latest+" applied at ") != 3 {
			t.Fatalf("--history (%d):\n%s", code, out)
		}
		code, out = runCLI(t, env, "migrate", "tenants", "--dry-run")
		if code != 0 || strings.Count(out, ": up to date") != 3 {
			t.Fatalf("--dry-run (%d):\n%s", code, out)
		}

		// Alpha's latest migration is rolled back; Beta loses the record
		// of it but keeps its tables, so applying it again must fail.
		rollBackLatest(t, cfg, alpha.DatabaseName)
		forgetLatest(t, cfg, beta.DatabaseName)

		for range 2 { // a dry run changes nothing, so twice gives the same answer
			code, out = runCLI(t, env, "migrate", "tenants", "--dry-run")
			if code != 0 ||
				!strings.Contains(out, fmt.Sprintf("tenant %s (%s): would apply %s", alpha.ID, alpha.DatabaseName, latest)) ||
				!strings.Contains(out, fmt.Sprintf("tenant %s (%s): up to date", gamma.ID, gamma.DatabaseName)) {
				t.Fatalf("--dry-run after rollback (%d):\n%s", code, out)
			}
		}

		code, out = runCLI(t, env, "migrate", "tenants")
		if code == 0 {
			t.Fatalf("migrate tenants exited 0 although a tenant failed:\n%s", out)
		}
		for _, want := range []string{
			fmt.Sprintf("tenant %s (%s): applied %s", alpha.ID, alpha.DatabaseName, latest),
			fmt.Sprintf("tenant %s (%s): FAILED", beta.ID, beta.DatabaseName),
			fmt.Sprintf("tenant %s (%s): up to date", gamma.ID, gamma.DatabaseName),
			"3 tenant databases, 1 failed",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}

		code, out = runCLI(t, env, "migrate", "tenants", "--tenant", alpha.ID, "--history")
		if code != 0 || !strings.Contains(out, alpha.DatabaseName) || strings.Contains(out, gamma.DatabaseName) ||
			!strings.Contains(out, "00001_documents_and_files.sql applied at ") || !strings.Contains(out, latest+" applied at ") {
			t.Fatalf("--tenant --history (%d):\n%s", code, out)
		}
		if code, out = runCLI(t, env, "migrate", "tenants", "--tenant", "0b7e3b8e-5f7a-4c1e-9a57-3b7c2c0c9a11"); code == 0 {
			t.Fatalf("an unknown --tenant succeeded:\n%s", out)
		}

		code, out = runCLI(t, env, "migrate", "--dry-run")
		if code != 0 || !strings.Contains(out, "control database: up to date") {
			t.Fatalf("migrate --dry-run (%d):\n%s", code, out)
		}
		code, out = runCLI(t, env, "migrate", "--history")
		if code != 0 || !strings.Contains(out, "control database: 00001_accounts_and_tenants.sql applied at ") {
			t.Fatalf("migrate --history (%d):\n%s", code, out)
		}
	})
}

// withTenantDB runs fn on a tenant database opened directly, with the
// engine's tenant migrations.
func withTenantDB(t *testing.T, cfg config.Config, name string, fn func(db sqldb.DB, migrations fs.FS)) {
	t.Helper()
	ctx := context.Background()
	engines, err := app.OpenEngines(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer engines.Close()
	db, err := engines.Tenants.Open(ctx, tenantdb.Ref{Name: name}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fn(db, engines.Tenants.Migrations())
}

func latestTenantMigration(t *testing.T, cfg config.Config) string {
	t.Helper()
	engines, err := app.OpenEngines(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer engines.Close()
	names, err := fs.Glob(engines.Tenants.Migrations(), "*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("no tenant migrations: %v", err)
	}
	sort.Strings(names)
	return names[len(names)-1]
}

func gooseProvider(t *testing.T, db sqldb.DB, migrations fs.FS) *goose.Provider {
	t.Helper()
	dialect := goose.DialectSQLite3
	if db.Dialect() == sqldb.Postgres {
		dialect = goose.DialectPostgres
	}
	p, err := goose.NewProvider(dialect, db.(interface{ SQL() *sql.DB }).SQL(), migrations, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// rollBackLatest undoes a tenant database's latest migration with its own
// down section.
func rollBackLatest(t *testing.T, cfg config.Config, name string) {
	t.Helper()
	withTenantDB(t, cfg, name, func(db sqldb.DB, migrations fs.FS) {
		if _, err := gooseProvider(t, db, migrations).Down(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// forgetLatest deletes the record of a tenant database's latest migration,
// leaving what it created.
func forgetLatest(t *testing.T, cfg config.Config, name string) {
	t.Helper()
	withTenantDB(t, cfg, name, func(db sqldb.DB, migrations fs.FS) {
		current, err := gooseProvider(t, db, migrations).GetDBVersion(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(context.Background(), "DELETE FROM goose_db_version WHERE version_id = $1", current); err != nil {
			t.Fatal(err)
		}
	})
}
