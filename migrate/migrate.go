// Package migrate applies and reports the numbered migrations a database
// keeps, for the control database and for tenant databases alike: tenantry's
// own SQL files, embedded in the engine packages and run with goose's
// provider API (which keeps no global state), and the migrations a library
// brings for its own tables in the same database (the job queue's).
//
// Every schema change runs under the database's schema lock, held from the
// first set to the last, so that any number of processes may start at once
// against one database: the first to take the lock applies what is pending,
// and the others, once they have it, find nothing left to do.
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

// Set is one line of numbered migrations kept in a database. Its methods
// take no lock: a Migrator calls them while it holds the database's schema
// lock.
type Set interface {
	// Name names the set in reports, such as "control database" or
	// "job queue".
	Name() string
	// Up applies every pending migration in order and returns the ones it
	// applied, those applied before a failure included.
	Up(ctx context.Context) ([]Migration, error)
	// Pending lists the migrations Up would apply.
	Pending(ctx context.Context) ([]Migration, error)
	// History lists the applied migrations with the time each was applied.
	History(ctx context.Context) ([]Migration, error)
}

// Locker is a database that can lock its schema: until unlock, every other
// holder of the lock on the same database, in this process or another,
// waits. The engines' databases implement it.
type Locker interface {
	LockSchema(ctx context.Context) (unlock func() error, err error)
}

// Result is what one set did or would do.
type Result struct {
	Set        string
	Migrations []Migration
}

// Migrator applies and reports the sets of one database, in order, under
// the database's schema lock.
type Migrator struct {
	db   sqldb.DB
	sets []Set
}

// New returns a Migrator for the sets of db, applied in the order given.
func New(db sqldb.DB, sets ...Set) *Migrator {
	return &Migrator{db: sqldb.Underlying(db), sets: sets}
}

// NewFiles returns a Migrator for db's one set of SQL files in fsys.
func NewFiles(db sqldb.DB, name string, fsys fs.FS) (*Migrator, error) {
	set, err := Files(db, name, fsys)
	if err != nil {
		return nil, err
	}
	return New(db, set), nil
}

// Up applies every pending migration of every set. It stops at the first
// failure, reporting what was applied until then.
func (m *Migrator) Up(ctx context.Context) ([]Result, error) {
	return m.each(ctx, Set.Up)
}

// Pending lists the migrations Up would apply, without applying them. It
// waits for a migration in progress, so that its answer is not about a
// schema half changed.
func (m *Migrator) Pending(ctx context.Context) ([]Result, error) {
	return m.each(ctx, Set.Pending)
}

// History lists the applied migrations of every set.
func (m *Migrator) History(ctx context.Context) ([]Result, error) {
	return m.each(ctx, Set.History)
}

// Current reports whether no migration is pending.
func (m *Migrator) Current(ctx context.Context) (bool, error) {
	pending, err := m.Pending(ctx)
	if err != nil {
		return false, err
	}
	for _, r := range pending {
		if len(r.Migrations) > 0 {
			return false, nil
		}
	}
	return true, nil
}

func (m *Migrator) each(ctx context.Context, fn func(Set, context.Context) ([]Migration, error)) (results []Result, err error) {
	locker, ok := m.db.(Locker)
	if !ok {
		return nil, fmt.Errorf("migrate: %T cannot lock its schema", m.db)
	}
	unlock, err := locker.LockSchema(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	defer func() {
		if uerr := unlock(); uerr != nil && err == nil {
			err = fmt.Errorf("migrate: unlock schema: %w", uerr)
		}
	}()
	for _, s := range m.sets {
		migrations, err := fn(s, ctx)
		results = append(results, Result{Set: s.Name(), Migrations: migrations})
		if err != nil {
			return results, fmt.Errorf("%s: %w", s.Name(), err)
		}
	}
	return results, nil
}

// sqlHandle is what the engines' DB types offer for libraries that need a
// database/sql handle.
type sqlHandle interface {
	SQL() *sql.DB
}

// files is a set of numbered SQL files, applied by goose and recorded in
// goose_db_version.
type files struct {
	name     string
	provider *goose.Provider
}

// Files returns the set of numbered SQL files in fsys, kept in db.
func Files(db sqldb.DB, name string, fsys fs.FS) (Set, error) {
	db = sqldb.Underlying(db)
	h, ok := db.(sqlHandle)
	if !ok {
		return nil, fmt.Errorf("migrate: %T offers no database/sql handle", db)
	}
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	dialect := goose.DialectSQLite3
	if db.Dialect() == sqldb.Postgres {
		dialect = goose.DialectPostgres
		// Goose's own advisory lock, under a key other than the schema
		// lock's, is taken as well so that processes of a release that
		// knew only this one are still kept out.
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
	return &files{name: name, provider: p}, nil
}

func (f *files) Name() string { return f.name }

func (f *files) Up(ctx context.Context) ([]Migration, error) {
	results, err := f.provider.Up(ctx)
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

func (f *files) Pending(ctx context.Context) ([]Migration, error) {
	return f.list(ctx, goose.StatePending)
}

func (f *files) History(ctx context.Context) ([]Migration, error) {
	return f.list(ctx, goose.StateApplied)
}

func (f *files) list(ctx context.Context, state goose.State) ([]Migration, error) {
	statuses, err := f.provider.Status(ctx)
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
