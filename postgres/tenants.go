package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/tenantdb"
)

var _ tenantdb.Engine = (*TenantDatabases)(nil)

// ServerURLs finds the connection string template of a registered database
// server: a PostgreSQL URL with a {database_name} placeholder.
type ServerURLs interface {
	URLTemplate(ctx context.Context, server string) (string, error)
}

// TenantDatabases keeps one PostgreSQL database per tenant, on the default
// server (the control database's, or TENANT_DATABASE_URL_TEMPLATE's) or on
// a registered one. Databases are created and dropped through an
// administrative connection to their own server, to its maintenance
// database ("postgres") unless it is the control database's server.
type TenantDatabases struct {
	control  *DB
	template string
	base     *pgxpool.Config
	servers  ServerURLs

	mu     sync.Mutex
	admins map[string]*DB
}

// adminConns is the size of each server's administrative pool: CREATE and
// DROP DATABASE, one at a time in practice.
const adminConns = 2

// maintenanceDatabase is the database administrative connections to a
// tenant server use; every PostgreSQL server has it.
const maintenanceDatabase = "postgres"

// NewTenantDatabases returns the tenant engine. control is the control
// database, whose server is the default one when urlTemplate is empty:
// tenant databases are then reached like controlURL with the database name
// replaced. urlTemplate, when not empty, is a connection string containing
// {database_name}, and names the default server. servers finds the
// templates of registered servers; nil means there are none.
func NewTenantDatabases(control *DB, controlURL, urlTemplate string, servers ServerURLs) (*TenantDatabases, error) {
	t := &TenantDatabases{control: control, template: urlTemplate, servers: servers, admins: map[string]*DB{}}
	if urlTemplate == "" {
		base, err := ParseURL(controlURL)
		if err != nil {
			return nil, err
		}
		t.base = base
	} else if err := CheckURLTemplate(urlTemplate); err != nil {
		return nil, fmt.Errorf("TENANT_DATABASE_URL_TEMPLATE: %w", err)
	}
	return t, nil
}

// CheckURLTemplate reports whether template is a PostgreSQL connection
// string with a {database_name} placeholder, without echoing it: it may
// hold a password.
func CheckURLTemplate(template string) error {
	if !strings.Contains(template, "{database_name}") {
		return errors.New("the URL must contain {database_name}")
	}
	_, err := ParseURL(strings.ReplaceAll(template, "{database_name}", "tenant_check"))
	return err
}

// tenantConnectTimeout bounds a connection attempt to a tenant database
// whose URL sets none: a server that does not answer must make its tenants
// unavailable quickly, not hold their requests for the operating system's
// TCP timeout.
const tenantConnectTimeout = 10 * time.Second

// config returns the connection settings of database name on server.
func (t *TenantDatabases) config(ctx context.Context, server, name string) (*pgxpool.Config, error) {
	var c *pgxpool.Config
	switch {
	case server != "":
		if t.servers == nil {
			return nil, fmt.Errorf("database server %q is not registered", server)
		}
		template, err := t.servers.URLTemplate(ctx, server)
		if err != nil {
			return nil, err
		}
		if c, err = ParseURL(strings.ReplaceAll(template, "{database_name}", name)); err != nil {
			return nil, fmt.Errorf("database server %q: %w", server, err)
		}
	case t.template == "":
		c = t.base.Copy()
		c.ConnConfig.Database = name
	default:
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

// admin returns the administrative connection of server.
func (t *TenantDatabases) admin(ctx context.Context, server string) (*DB, error) {
	if server == "" && t.template == "" {
		return t.control, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if db, ok := t.admins[server]; ok {
		return db, nil
	}
	c, err := t.config(ctx, server, maintenanceDatabase)
	if err != nil {
		return nil, err
	}
	db, err := Open(ctx, c, adminConns)
	if err != nil {
		return nil, err
	}
	t.admins[server] = db
	return db, nil
}

// Close closes the administrative connections; the control database is its
// owner's to close.
func (t *TenantDatabases) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for server, db := range t.admins {
		db.Close()
		delete(t.admins, server)
	}
	return nil
}

func checkName(name string) error {
	if !tenantdb.ValidName(name) {
		return fmt.Errorf("invalid tenant database name %q", name)
	}
	return nil
}

// Create implements tenantdb.Engine.
func (t *TenantDatabases) Create(ctx context.Context, ref tenantdb.Ref) error {
	if err := checkName(ref.Name); err != nil {
		return err
	}
	admin, err := t.admin(ctx, ref.Server)
	if err != nil {
		return err
	}
	// CREATE DATABASE cannot take parameters; the name is validated above
	// and quoted here.
	_, err = admin.pool.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{ref.Name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" {
		return tenantdb.ErrExists
	} else if err != nil {
		return fmt.Errorf("create tenant database %s: %w", ref, translate(err))
	}
	return nil
}

// Drop implements tenantdb.Engine.
func (t *TenantDatabases) Drop(ctx context.Context, ref tenantdb.Ref) error {
	if err := checkName(ref.Name); err != nil {
		return err
	}
	admin, err := t.admin(ctx, ref.Server)
	if err != nil {
		return err
	}
	// FORCE ends sessions other processes may still hold on the database.
	if _, err := admin.pool.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{ref.Name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop tenant database %s: %w", ref, translate(err))
	}
	return nil
}

// Exists implements tenantdb.Engine.
func (t *TenantDatabases) Exists(ctx context.Context, ref tenantdb.Ref) (bool, error) {
	admin, err := t.admin(ctx, ref.Server)
	if err != nil {
		return false, err
	}
	var n int
	err = admin.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", ref.Name).Scan(&n)
	return n > 0, err
}

// Open implements tenantdb.Engine.
func (t *TenantDatabases) Open(ctx context.Context, ref tenantdb.Ref, maxConns int) (sqldb.DB, error) {
	return t.OpenDB(ctx, ref, maxConns)
}

// OpenDB is Open returning the engine's own type, for work that needs more
// than sqldb.DB offers (copying a database from one server to another).
func (t *TenantDatabases) OpenDB(ctx context.Context, ref tenantdb.Ref, maxConns int) (*DB, error) {
	if err := checkName(ref.Name); err != nil {
		return nil, err
	}
	config, err := t.config(ctx, ref.Server, ref.Name)
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
		return nil, fmt.Errorf("open tenant database %s: %w", ref, err)
	}
	return db, nil
}

// Migrations implements tenantdb.Engine.
func (t *TenantDatabases) Migrations() fs.FS { return TenantMigrations() }

// CheckServer connects to the maintenance database of the server a URL
// template points to, so that a server is registered only if it answers.
func CheckServer(ctx context.Context, urlTemplate string) error {
	if err := CheckURLTemplate(urlTemplate); err != nil {
		return err
	}
	c, err := ParseURL(strings.ReplaceAll(urlTemplate, "{database_name}", maintenanceDatabase))
	if err != nil {
		return err
	}
	if c.ConnConfig.ConnectTimeout == 0 {
		c.ConnConfig.ConnectTimeout = tenantConnectTimeout
	}
	db, err := Open(ctx, c, 1)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Ping(ctx); err != nil {
		// The error may name the host, never the password.
		return fmt.Errorf("the server does not answer: %w", err)
	}
	return nil
}
