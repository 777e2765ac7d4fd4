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
	dir      string
	cacheKiB int
}

// NewTenantDatabases returns the tenant engine for dir, creating the
// directory if needed. connCap is how many connections the process may
// hold open on tenant databases together; it sizes each connection's page
// cache (see TenantCacheKiB).
func NewTenantDatabases(dir string, connCap int) (*TenantDatabases, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create tenant database directory: %w", err)
	}
	return &TenantDatabases{dir: dir, cacheKiB: TenantCacheKiB(connCap)}, nil
}

// Bounds of the page caches of tenant database connections, in KiB.
//
// Each connection has its own page cache, which fills as queries read
// pages and stays full until the connection closes. SQLite's default,
// 2,000 KiB, times the default cap of 768 tenant connections (256 open
// databases of a writer and two readers) would let the caches alone grow
// to 1.5 GiB, where the embedded shape idles at about 40 MiB and stays
// under 100 MiB through bursts. So the caches share one budget: 96 MiB at
// the cap, 128 KiB (32 pages of 4 KiB) per connection at the default cap.
// That holds what a listing reads (the few inner pages of an index and of
// the table, a leaf of the index and the table leaves of a page's rows,
// about 30 pages on 100,000 documents) so that the next request of the
// same tenant finds them cached; a miss costs a read from the operating
// system's file cache, not from disk. Fewer connections get more each, up
// to SQLite's default; more get less, down to 64 KiB, below which a
// listing would evict its own inner pages as it reads.
const (
	tenantCacheBudgetKiB = 96 << 10
	tenantCacheMinKiB    = 64
	tenantCacheMaxKiB    = 2000
)

// TenantCacheKiB is the page cache of each tenant database connection when
// the process may hold connCap of them.
func TenantCacheKiB(connCap int) int {
	if connCap < 1 {
		return tenantCacheMaxKiB
	}
	return min(max(tenantCacheBudgetKiB/connCap, tenantCacheMinKiB), tenantCacheMaxKiB)
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
	return Open(p, Options{ReadConns: max(maxConns-1, 0), ReadIdleTimeout: readIdleTimeout, MustExist: true, CacheKiB: t.cacheKiB})
}

// Migrations implements tenantdb.Engine.
func (t *TenantDatabases) Migrations() fs.FS { return TenantMigrations() }
