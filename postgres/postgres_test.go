package postgres_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"testing"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/postgres"
	"github.com/tenantry/tenantry/sqldb"
)

func open(t *testing.T, url string) *postgres.DB {
	t.Helper()
	cfg, err := postgres.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	db, err := postgres.Open(context.Background(), cfg, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Ensure values the server refuses are reported as the input's fault, and a
// database that cannot serve as unavailable, so that neither becomes a 500.
func TestDriverErrorsAreTranslated(t *testing.T) {
	apptest.RequireShape(t, config.Production)
	t.Parallel()
	ctx := context.Background()
	db := open(t, apptest.NewPostgresDatabase(t))
	for _, c := range []struct {
		query string
		arg   any
	}{
		{`SELECT $1::text`, "nul \x00 inside"},
		{`SELECT $1::uuid`, "urn:uuid:not-really"},
		{`SELECT $1::int`, "9223372036854775807"},
	} {
		var out any
		if err := db.QueryRow(ctx, c.query, c.arg).Scan(&out); !errors.Is(err, sqldb.ErrInvalidValue) {
			t.Errorf("%s with %q: %v, want ErrInvalidValue", c.query, c.arg, err)
		}
	}

	missing := open(t, replaceDatabase(t, os.Getenv(apptest.PostgresEnv), "tenantry_no_such_database"))
	if err := missing.Ping(ctx); !errors.Is(err, sqldb.ErrUnavailable) {
		t.Errorf("ping of a missing database: %v, want ErrUnavailable", err)
	}
	other := open(t, os.Getenv(apptest.PostgresEnv))
	err := db.InTx(ctx, func(tx sqldb.Tx) error {
		var pid int
		if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
			t.Fatal(err)
		}
		if _, err := other.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
			t.Fatal(err)
		}
		_, err := tx.Exec(ctx, `SELECT 1`)
		return err
	})
	if !errors.Is(err, sqldb.ErrUnavailable) {
		t.Errorf("a statement on a connection the server ended: %v, want ErrUnavailable", err)
	}
}

func replaceDatabase(t *testing.T, raw, name string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
