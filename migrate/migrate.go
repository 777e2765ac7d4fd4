// Package migrate applies and reports the numbered SQL migrations embedded in
// the engine packages, for the control database and for tenant databases
// alike. It wraps goose's provider API, which keeps no global state.
package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/tenantry/tenantry/sqldb"
)

// Migration is one numbered migration and, once applied, when it was.
type Migration struct {
	Version   int64     `json:"version"`
	Name      string    `json:"name"`
	AppliedAt time.Time `json:"applied_at,omitzero"`
}

// Migrator runs one set of migrations against one database.
type Migrator struct {
	provider *goose.Provider
}

// sqlHandle is what the engines' DB types offer for libraries that need a
// database/sql handle.
type sqlHandle interface {
	SQL() *sql.DB
}

// New returns a Migrator for db using the migration files in fsys.
func New(db sqldb.DB, fsys fs.FS) (*Migrator, error) {
	h, ok := db.(sqlHandle)
	if !ok {
		return nil, fmt.Errorf("migrate: %T offers no database/sql handle", db)
	}
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	dialect := goose.DialectSQLite3
	if db.Dialect() == sqldb.Postgres {
		dialect = goose.DialectPostgres
		// Several processes may start at once against one database; a
		// session advisory lock lets exactly one of them migrate.
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, h.SQL(), fsys, opts...)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return &Migrator{provider: p}, nil
}

// Up applies every pending migration and returns the ones it applied.
func (m *Migrator) Up(ctx context.Context) ([]Migration, error) {
	results, err := m.provider.Up(ctx)
	var applied []Migration
	for _, r := range results {
		if r.Error == nil {
			applied = append(applied, Migration{Version: r.Source.Version, Name: path.Base(r.Source.Path), AppliedAt: time.Now().UTC()})
		}
	}
	if err != nil {
		var partial *goose.PartialError
		if errors.As(err, &partial) && partial.Failed != nil {
			return applied, fmt.Errorf("migration %s failed: %w", path.Base(partial.Failed.Source.Path), partial.Err)
		}
		return applied, fmt.Errorf("migrate up: %w", err)
	}
	return applied, nil
}

// Pending lists the migrations Up would apply, without applying them.
func (m *Migrator) Pending(ctx context.Context) ([]Migration, error) {
	return m.list(ctx, goose.StatePending)
}

// History lists the applied migrations with the time each was applied.
func (m *Migrator) History(ctx context.Context) ([]Migration, error) {
	return m.list(ctx, goose.StateApplied)
}

// Versions returns the database's current version and the latest known one.
func (m *Migrator) Versions(ctx context.Context) (current, latest int64, err error) {
	current, latest, err = m.provider.GetVersions(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("migration versions: %w", err)
	}
	return current, latest, nil
}

func (m *Migrator) list(ctx context.Context, state goose.State) ([]Migration, error) {
	statuses, err := m.provider.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	var out []Migration
	for _, s := range statuses {
		if s.State != state {
			continue
		}
		mig := Migration{Version: s.Source.Version, Name: path.Base(s.Source.Path)}
		if state == goose.StateApplied {
			mig.AppliedAt = s.AppliedAt.UTC()
		}
		out = append(out, mig)
	}
	return out, nil
}
