package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tenantry/tenantry/blob"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/jobs"
	"github.com/tenantry/tenantry/localfs"
	"github.com/tenantry/tenantry/migrate"
	"github.com/tenantry/tenantry/postgres"
	"github.com/tenantry/tenantry/s3"
	"github.com/tenantry/tenantry/servers"
	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/sqlite"
	"github.com/tenantry/tenantry/tenant"
	"github.com/tenantry/tenantry/tenantdb"
)

// Engines are the SQL engines of one shape: the control database and the
// engine that holds tenant databases.
type Engines struct {
	Shape             config.Shape
	Control           sqldb.DB
	ControlMigrations fs.FS
	Tenants           tenantdb.Engine
	// Servers is the registry of the database servers tenant databases
	// may live on; nil in the embedded shape, which has only its data
	// directory.
	Servers *servers.Registry
	// closeTenants releases what the tenant engine holds of its own.
	closeTenants func() error
}

// ControlMigrator returns the migrator of the control database: tenantry's
// own migrations, then the job queue's, all under the database's one schema
// lock. Serve and worker apply it as they start, and `tenantry migrate` on
// demand, so that any number of them may start at once.
func (e *Engines) ControlMigrator() (*migrate.Migrator, error) {
	own, err := migrate.Files(e.Control, "control database", e.ControlMigrations)
	if err != nil {
		return nil, err
	}
	queue, err := jobs.Migrations(e.Control)
	if err != nil {
		return nil, err
	}
	return migrate.New(e.Control, own, queue), nil
}

// controlReadConns is the number of read connections beside the single
// writer of an embedded control database; reads (token checks, listings)
// are most of its traffic.
const controlReadConns = 4

// OpenEngines opens the engines cfg selects. It migrates nothing.
func OpenEngines(ctx context.Context, cfg config.Config) (*Engines, error) {
	if cfg.Shape() == config.Production {
		pgcfg, err := postgres.ParseURL(cfg.DatabaseURL)
		if err != nil {
			return nil, fmt.Errorf("DATABASE_URL: %w", err)
		}
		control, err := postgres.Open(ctx, pgcfg, cfg.ControlDBMaxConns)
		if err != nil {
			return nil, err
		}
		registry := servers.NewRegistry(control)
		tenants, err := postgres.NewTenantDatabases(control, cfg.DatabaseURL, cfg.TenantDatabaseURLTemplate, registry)
		if err != nil {
			control.Close()
			return nil, err
		}
		return &Engines{Shape: config.Production, Control: control, ControlMigrations: postgres.ControlMigrations(),
			Tenants: tenants, Servers: registry, closeTenants: tenants.Close}, nil
	}

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	control, err := sqlite.Open(filepath.Join(cfg.DataDir, "control.db"), sqlite.Options{ReadConns: controlReadConns})
	if err != nil {
		return nil, err
	}
	tenants, err := sqlite.NewTenantDatabases(filepath.Join(cfg.DataDir, "tenants"), cfg.TenantDBMaxConns)
	if err != nil {
		control.Close()
		return nil, err
	}
	return &Engines{Shape: config.Embedded, Control: control, ControlMigrations: sqlite.ControlMigrations(), Tenants: tenants}, nil
}

// OpenBlobs opens the blob store cfg selects, as it stores objects, sealed
// or not: S3 when a bucket is configured, local disk under the data
// directory otherwise.
func OpenBlobs(ctx context.Context, cfg config.Config) (blob.Store, error) {
	if cfg.Bucket() != "" {
		return s3.NewBlobStore(ctx, s3.Config{
			Endpoint:        cfg.S3EndpointURL,
			PublicURL:       cfg.S3PublicURL,
			Region:          cfg.S3Region,
			Bucket:          cfg.Bucket(),
			AccessKeyID:     cfg.S3AccessKeyID,
			SecretAccessKey: cfg.S3SecretKey,
		})
	}
	return localfs.NewBlobStore(filepath.Join(cfg.DataDir, "blobs"))
}

// Close closes the control database.
func (e *Engines) Close() error {
	var err error
	if e.closeTenants != nil {
		err = e.closeTenants()
	}
	return errors.Join(err, e.Control.Close())
}

// Placer is what chooses new tenants' servers: the registry, or nil in the
// embedded shape.
func (e *Engines) Placer() tenant.Placer {
	if e.Servers == nil {
		return nil
	}
	return e.Servers
}

// secretFile returns the secret stored in dir/name, generating and storing
// a random one (mode 0600) the first time, so that the embedded shape needs
// no configuration and its tokens survive restarts.
func secretFile(dir, name string, size int) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create secrets directory: %w", err)
	}
	path := filepath.Join(dir, name)
	if b, err := os.ReadFile(path); err == nil {
		secret := strings.TrimSpace(string(b))
		if len(secret) < 2*size {
			return "", fmt.Errorf("secret file %s is too short", path)
		}
		return secret, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read secret file: %w", err)
	}
	buf := make([]byte, size)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	secret := hex.EncodeToString(buf)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Another process generated it first; use theirs.
		return secretFile(dir, name, size)
	} else if err != nil {
		return "", fmt.Errorf("create secret file: %w", err)
	}
	if _, err := f.WriteString(secret + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("write secret file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("write secret file: %w", err)
	}
	return secret, f.Close()
}
