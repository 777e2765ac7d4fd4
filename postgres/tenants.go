package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/tenantdb"
)

var _ tenantdb.Engine = (*TenantDatabases)(nil)

// TenantDatabases keeps one PostgreSQL database per tenant. Databases are
// created and dropped through the control database's server connection and
// reached through a URL template, so they may live on another server.
type TenantDatabases struct {
	admin    *DB
	template string
	base     *pgxpool.Config
}

// NewTenantDatabases returns the tenant engine. admin is a connection that
// may run CREATE DATABASE (the control database's). urlTemplate, when not
// empty, is a connection string containing {database_name}; otherwise tenant
// databases are reached like controlURL with the database name replaced.
func NewTenantDatabases(admin *DB, controlURL, urlTemplate string) (*TenantDatabases, error) {
	t := &TenantDatabases{admin: admin, template: urlTemplate}
	if urlTemplate == "" {
		base, err := ParseURL(controlURL)
		if err != nil {
			return nil, err
		}
		t.base = base
	} else if !strings.Contains(urlTemplate, "{database_name}") {
		return nil, errors.New("TENANT_DATABASE_URL_TEMPLATE must contain {database_name}")
	} else if _, err := ParseURL(strings.ReplaceAll(urlTemplate, "{database_name}", "tenant_check")); err != nil {
		return nil, fmt.Errorf("TENANT_DATABASE_URL_TEMPLATE: %w", err)
	}
	return t, nil
}

// tenantConnectTimeout bounds a connection attempt to a tenant database
// whose URL sets none: a server that does not answer must make its tenants
// unavailable quickly, not hold their requests for the operating system's
// TCP timeout.
const tenantConnectTimeout = 10 * time.Second

func (t *TenantDatabases) config(name string) (*pgxpool.Config, error) {
	var c *pgxpool.Config
	if t.template == "" {
		c = t.base.Copy()
		c.ConnConfig.Database = name
	} else {
		var err error
		if c, err = ParseURL(strings.ReplaceAll(t.template, "{database_name}", name)); err != nil {
			return nil, err
		}
	}
	if c.ConnConfig.ConnectTimeout == 0 {
		c.ConnConfig.ConnectTimeout = tenantConnectTimeout
	}
	return c, nil
}

func checkName(name string) error {
	if !tenantdb.ValidName(name) {
		return fmt.Errorf("invalid tenant database name %q", name)
	}
	return nil
}

// Create implements tenantdb.Engine.
func (t *TenantDatabases) Create(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	// CREATE DATABASE cannot take parameters; the name is validated above
	// and quoted here.
	_, err := t.admin.pool.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" {
		return tenantdb.ErrExists
	} else if err != nil {
		return fmt.Errorf("create tenant database %s: %w", name, err)
	}
	return nil
}

// Drop implements tenantdb.Engine.
func (t *TenantDatabases) Drop(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	// FORCE ends sessions other processes may still hold on the database.
	_, err := t.admin.pool.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	if err != nil {
		return fmt.Errorf("drop tenant database %s: %w", name, err)
	}
	return nil
}

// Exists implements tenantdb.Engine.
func (t *TenantDatabases) Exists(ctx context.Context, name string) (bool, error) {
	var n int
	err := t.admin.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n)
	return n > 0, err
}

// Open implements tenantdb.Engine.
func (t *TenantDatabases) Open(ctx context.Context, name string, maxConns int) (sqldb.DB, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	config, err := t.config(name)
	if err != nil {
		return nil, err
	}
	db, err := Open(ctx, config, maxConns)
	if err != nil {
		return nil, err
	}
	// pgxpool connects lazily; ping now so that a missing database is
	// reported here as such.
	if err := db.Ping(ctx); err != nil {
		db.Close()
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "3D000" {
			return nil, tenantdb.ErrNotExist
		}
		return nil, fmt.Errorf("open tenant database %s: %w", name, err)
	}
	return db, nil
}

// Migrations implements tenantdb.Engine.
func (t *TenantDatabases) Migrations() fs.FS { return TenantMigrations() }
