package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/tenantdb"
)

var _ tenantdb.Engine = (*TenantDatabases)(nil)

// TenantDatabases keeps one SQLite file per tenant in a directory.
type TenantDatabases struct {
	dir string
}

// NewTenantDatabases returns the tenant engine for dir, creating the
// directory if needed.
func NewTenantDatabases(dir string) (*TenantDatabases, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create tenant database directory: %w", err)
	}
	return &TenantDatabases{dir: dir}, nil
}

func (t *TenantDatabases) path(ref tenantdb.Ref) (string, error) {
	if ref.Server != "" {
		return "", fmt.Errorf("tenant database %s: the embedded shape keeps every tenant database in its data directory", ref)
	}
	if !tenantdb.ValidName(ref.Name) {
		return "", fmt.Errorf("invalid tenant database name %q", ref.Name)
	}
	return filepath.Join(t.dir, ref.Name+".db"), nil
}

// Create implements tenantdb.Engine.
func (t *TenantDatabases) Create(ctx context.Context, ref tenantdb.Ref) error {
	p, err := t.path(ref)
	if err != nil {
		return err
	}
	// O_EXCL claims the name atomically, even against another process.
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return tenantdb.ErrExists
	} else if err != nil {
		return fmt.Errorf("create tenant database %s: %w", ref, err)
	}
	return f.Close()
}

// Drop implements tenantdb.Engine.
func (t *TenantDatabases) Drop(ctx context.Context, ref tenantdb.Ref) error {
	p, err := t.path(ref)
	if err != nil {
		return err
	}
	// The main file goes last: while it exists the database is still
	// considered present, so a failed drop can be retried.
	for _, f := range []string{p + "-wal", p + "-shm", p + SchemaLockSuffix, p} {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("drop tenant database %s: %w", ref, err)
		}
	}
	return nil
}

// Exists implements tenantdb.Engine.
func (t *TenantDatabases) Exists(ctx context.Context, ref tenantdb.Ref) (bool, error) {
	p, err := t.path(ref)
	if err != nil {
		return false, err
	}
	_, err = os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// readIdleTimeout closes a tenant database's read connections once its
// burst of reads is over, so that a database kept open for its next request
// costs one connection.
const readIdleTimeout = time.Minute

// Open implements tenantdb.Engine. Of maxConns connections, one is the
// writer and the others read beside it, opened as reads need them; with
// maxConns 1 the writer also serves the reads.
func (t *TenantDatabases) Open(ctx context.Context, ref tenantdb.Ref, maxConns int) (sqldb.DB, error) {
	ok, err := t.Exists(ctx, ref)
	if err != nil {
		return nil, err
	} else if !ok {
		return nil, tenantdb.ErrNotExist
	}
	p, _ := t.path(ref)
	return Open(p, Options{ReadConns: max(maxConns-1, 0), ReadIdleTimeout: readIdleTimeout, MustExist: true})
}

// Migrations implements tenantdb.Engine.
func (t *TenantDatabases) Migrations() fs.FS { return TenantMigrations() }
