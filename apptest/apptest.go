// Package apptest starts complete tenantry instances for tests, in either
// shape, each with storage of its own: a temporary data directory for the
// embedded shape, fresh PostgreSQL databases for the production shape. The
// production shape runs when TENANTRY_TEST_DATABASE_URL names a PostgreSQL
// server tests may create databases on; otherwise its tests are skipped with
// a message saying so.
package apptest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantry/tenantry/app"
	"github.com/tenantry/tenantry/config"
)

// PostgresEnv is the variable naming the PostgreSQL server for tests, as a
// URL to a database the test user can connect to (postgres, say) with the
// right to create databases.
const PostgresEnv = "TENANTRY_TEST_DATABASE_URL"

// Shapes lists the shapes every behaviour is tested on.
var Shapes = []config.Shape{config.Embedded, config.Production} //nolint:gochecknoglobals // read-only list

// EachShape runs fn as one subtest per shape.
func EachShape(t *testing.T, fn func(t *testing.T, shape config.Shape)) {
	t.Helper()
	for _, shape := range Shapes {
		t.Run(string(shape), func(t *testing.T) {
			RequireShape(t, shape)
			fn(t, shape)
		})
	}
}

// ShapesEnv, when set, names the shapes to test, comma-separated; tests of
// the others are skipped. CI's race pass runs the HTTP suite on the
// embedded shape only: its main pass has already run every endpoint on both,
// and the production engines' own packages run on both under the race
// detector too.
const ShapesEnv = "TENANTRY_TEST_SHAPES"

// RequireShape skips the test when shape's engines are not available, or
// when ShapesEnv leaves it out.
func RequireShape(t testing.TB, shape config.Shape) {
	t.Helper()
	if only := os.Getenv(ShapesEnv); only != "" && !slices.Contains(strings.Split(only, ","), string(shape)) {
		t.Skipf("%s shape skipped: %s=%s", shape, ShapesEnv, only)
	}
	if shape == config.Production && os.Getenv(PostgresEnv) == "" {
		t.Skipf("PostgreSQL suite skipped: set %s (for example postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable) to run it", PostgresEnv)
	}
}

// Config returns a configuration for shape whose storage belongs to this test
// alone and is removed when it ends.
func Config(t testing.TB, shape config.Shape) config.Config {
	t.Helper()
	cfg, err := config.Parse(Environ(t, shape))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Environ returns the environment variables of such a configuration, for
// tests that run the command line. Connection caps are kept small so that
// parallel tests fit in a default PostgreSQL's max_connections.
func Environ(t testing.TB, shape config.Shape) map[string]string {
	t.Helper()
	RequireShape(t, shape)
	env := map[string]string{
		"TENANTRY_DATA_DIR":                   t.TempDir(),
		"TENANTRY_CONTROL_DB_MAX_CONNS":       "4",
		"TENANTRY_TENANT_DB_MAX_CONNS":        "8",
		"TENANTRY_TENANT_DB_CONNS_PER_TENANT": "2",
		"TENANTRY_SHUTDOWN_TIMEOUT":           "5s",
		// Processes of parallel tests must not compete for one port.
		"TENANTRY_METRICS_ADDR": "127.0.0.1:0",
		// Hashing cheaply keeps tests fast; limits are off unless a test
		// is about them.
		"TENANTRY_PASSWORD_HASH_MEMORY_KIB":    "64",
		"TENANTRY_PASSWORD_HASH_ITERATIONS":    "1",
		"TENANTRY_RATE_LIMIT_LOGIN":            "0",
		"TENANTRY_RATE_LIMIT_REGISTER":         "0",
		"TENANTRY_RATE_LIMIT_MAIL":             "0",
		"TENANTRY_RATE_LIMIT_MAIL_PER_ADDRESS": "0",
		"TENANTRY_REDIS_KEY_PREFIX":            "tenantry-test-" + randomHex(6) + ":",
	}
	if shape == config.Production {
		env["DATABASE_URL"] = NewPostgresDatabase(t)
		env["JWT_SECRET_KEY"] = randomHex(32)
		env["TENANTRY_MASTER_KEY"] = randomHex(32)
		if url := os.Getenv(RedisEnv); url != "" {
			env["REDIS_URL"] = url
		}
		for k, v := range S3Environ(t) {
			env[k] = v
		}
	}
	return env
}

// NewPostgresDatabase creates an empty database for this test and returns its
// URL. When the test ends, the database is dropped together with every tenant
// database its tenants table names.
func NewPostgresDatabase(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(PostgresEnv)
	name := "tenantry_test_" + randomHex(6)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to %s: %v", PostgresEnv, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("%s must be a URL: %v", PostgresEnv, err)
	}
	u.Path = "/" + name
	dbURL := u.String()
	t.Cleanup(func() { dropPostgresDatabase(t, admin, dbURL, name) })
	return dbURL
}

// dropPostgresDatabase drops a test's control database and every tenant
// database its tenants table names, on the default server and on every
// server it registered: a move may have left a copy on either side.
func dropPostgresDatabase(t testing.TB, admin, dbURL, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var tenantDBs, templates []string
	if conn, err := pgx.Connect(ctx, dbURL); err == nil {
		tenantDBs = queryStrings(ctx, t, conn, "SELECT database_name FROM tenants")
		templates = queryStrings(ctx, t, conn, "SELECT url_template FROM tenant_servers")
		conn.Close(ctx)
	}
	dropAll := func(adminURL string, dbs []string) {
		conn, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			t.Logf("dropping test databases: %v", err)
			return
		}
		defer conn.Close(ctx)
		for _, db := range dbs {
			if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)"); err != nil {
				t.Logf("drop %s: %v", db, err)
			}
		}
	}
	dropAll(admin, append(tenantDBs, name))
	for _, template := range templates {
		dropAll(strings.ReplaceAll(template, "{database_name}", "postgres"), tenantDBs)
	}
}

// queryStrings runs a query of one text column, logging rather than
// failing: a test that ended early may not have created the table.
func queryStrings(ctx context.Context, t testing.TB, conn *pgx.Conn, query string) []string {
	rows, err := conn.Query(ctx, query)
	var out []string
	if err == nil {
		out, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil && !strings.Contains(err.Error(), "does not exist") {
		t.Logf("%s: %v", query, err)
	}
	return out
}

// SecondPostgresEnv names a second PostgreSQL server, as a URL like
// PostgresEnv's, for the tests of tenants spread over several servers.
const SecondPostgresEnv = "TENANTRY_TEST_DATABASE_URL_2"

// RequireSecondServer skips the test unless a second PostgreSQL server is
// configured, and returns its URL template for tenant databases.
func RequireSecondServer(t testing.TB) string {
	t.Helper()
	RequireShape(t, config.Production)
	raw := os.Getenv(SecondPostgresEnv)
	if raw == "" {
		t.Skipf("tests of several database servers skipped: set %s to a second PostgreSQL server (as for %s) to run them", SecondPostgresEnv, PostgresEnv)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("%s must be a URL: %v", SecondPostgresEnv, err)
	}
	u.Path = "/{database_name}"
	return strings.ReplaceAll(u.String(), "%7Bdatabase_name%7D", "{database_name}")
}

// ServerTemplate returns the URL template of the first test server, the one
// PostgresEnv names, for registering it as a named server.
func ServerTemplate(t testing.TB) string {
	t.Helper()
	u, err := url.Parse(os.Getenv(PostgresEnv))
	if err != nil {
		t.Fatalf("%s must be a URL: %v", PostgresEnv, err)
	}
	u.Path = "/{database_name}"
	return strings.ReplaceAll(u.String(), "%7Bdatabase_name%7D", "{database_name}")
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Env is a running tenantry reached over HTTP. Every response Do reads is
// checked against the OpenAPI document the server serves.
type Env struct {
	App    *app.App
	Server *httptest.Server
	URL    string
	Logs   *LogBuffer
	// OnResponse, when set, is given every response Do reads, for tests
	// that check what all of them hold.
	OnResponse func(*Response)

	tlsOnce sync.Once
	tls     *httptest.Server

	contractOnce sync.Once
	contract     *contract
	contractErr  error
}

// Start builds an App from cfg, serves it on a loopback port and stops both
// when the test ends.
func Start(t testing.TB, cfg config.Config) *Env {
	t.Helper()
	logs := &LogBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// One process plays every part: in the production shape it also does
	// the worker's job, so that events and jobs flow in tests.
	a, err := app.New(context.Background(), cfg, logger, "test", app.AsWorker())
	if err != nil {
		t.Fatalf("start tenantry: %v", err)
	}
	if err := a.Start(context.Background()); err != nil {
		a.Close()
		t.Fatalf("start tenantry: %v", err)
	}
	srv := httptest.NewServer(a.Server)
	env := &Env{App: a, Server: srv, URL: srv.URL, Logs: logs}
	t.Cleanup(func() {
		if env.tls != nil {
			env.tls.Close()
		}
		srv.Close()
		if err := a.Close(); err != nil {
			t.Logf("closing tenantry: %v", err)
		}
	})
	return env
}

// StartShape is Start with a fresh Config for shape.
func StartShape(t testing.TB, shape config.Shape) *Env {
	t.Helper()
	return Start(t, Config(t, shape))
}

// String names the environment in failure messages.
func (e *Env) String() string {
	return fmt.Sprintf("tenantry %s at %s", e.App.Config.Shape(), e.URL)
}

// Engines opens the engines of cfg with the control database migrated, for
// tests that work below the App, and closes them when the test ends.
func Engines(t testing.TB, cfg config.Config) *app.Engines {
	t.Helper()
	ctx := context.Background()
	e, err := app.OpenEngines(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	mig, err := e.ControlMigrator()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mig.Up(ctx); err != nil {
		t.Fatal(err)
	}
	return e
}

// DatabaseExists reports whether a database of that name exists on the
// PostgreSQL server a URL template (with {database_name}) points to.
func DatabaseExists(t testing.TB, template, name string) bool {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, strings.ReplaceAll(template, "{database_name}", "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}
