// Package jobs is tenantry's job queue: River, with its tables in the
// control database, on the driver of the shape (SQLite or pgx). A job can be
// inserted in the same transaction as the data it concerns. Periodic jobs
// are enqueued by the elected leader of the processes working the queue and
// are unique per period, so however many processes run, each runs once per
// period.
package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"riverqueue.com/riverui"
	"riverqueue.com/riverui/uiendpoints"

	"github.com/tenantry/tenantry/migrate"
	"github.com/tenantry/tenantry/postgres"
	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/sqlite"
)

// Queue inserts and, when it has workers, works jobs.
type Queue interface {
	// InsertTx enqueues a job in tx, a transaction of the control database:
	// the job exists if and only if the transaction commits.
	InsertTx(ctx context.Context, tx sqldb.Tx, args river.JobArgs, opts *river.InsertOpts) error
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) error
	// Start works jobs until Stop; a queue without workers only inserts.
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	// UIEndpoints serves River UI's API for this queue.
	UIEndpoints() uiendpoints.Bundle
}

// Config describes what a queue does.
type Config struct {
	// Workers work jobs; nil makes an insert-only queue, for processes
	// that enqueue but leave the work to others.
	Workers  *river.Workers
	Periodic []*river.PeriodicJob
	// MaxWorkers bounds the jobs worked at once by this process.
	MaxWorkers int
	// FetchPollInterval is how often idle workers look for new jobs.
	FetchPollInterval time.Duration
	// RescueAfter is how long a job may stay running before it is taken
	// for the job of a process that died, and worked again; River's hour
	// when zero. It bounds the jobs' own timeouts.
	RescueAfter time.Duration
	Logger      *slog.Logger
}

// Migrations returns the job queue's own migrations, River's, which keep
// its tables in the control database. They are applied with the control
// database's, under the same schema lock (see app.ControlMigrator).
func Migrations(control sqldb.DB) (migrate.Set, error) {
	switch db := control.(type) {
	case *sqlite.DB:
		return newMigrations(riversqlite.New(db.SQL()), control)
	case *postgres.DB:
		return newMigrations(riverpgxv5.New(db.Pool()), control)
	}
	return nil, fmt.Errorf("jobs: unsupported database %T", control)
}

type migrations[TTx any] struct {
	migrator *rivermigrate.Migrator[TTx]
	db       sqldb.DB
}

func newMigrations[TTx any](driver riverdriver.Driver[TTx], db sqldb.DB) (*migrations[TTx], error) {
	// What it applied is reported by the caller; River's own log lines
	// would go to standard output, which is the migrate command's report.
	m, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	return &migrations[TTx]{migrator: m, db: db}, nil
}

func (m *migrations[TTx]) Name() string { return "job queue" }

func (m *migrations[TTx]) Up(ctx context.Context) ([]migrate.Migration, error) {
	before, err := m.migrator.ExistingVersions(ctx)
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	res, err := m.migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		// River reports nothing of a partial run, but each of its
		// migrations commits on its own: what was applied is what is
		// recorded now and was not before.
		var applied []migrate.Migration
		if after, lerr := m.migrator.ExistingVersions(ctx); lerr == nil && len(after) >= len(before) {
			applied = riverMigrations(after[len(before):], time.Now().UTC())
		}
		return applied, fmt.Errorf("jobs: %w", err)
	}
	out := make([]migrate.Migration, 0, len(res.Versions))
	now := time.Now().UTC()
	for _, v := range res.Versions {
		out = append(out, riverMigration(v.Version, v.Name, now))
	}
	return out, nil
}

func (m *migrations[TTx]) Pending(ctx context.Context) ([]migrate.Migration, error) {
	existing, err := m.migrator.ExistingVersions(ctx)
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	applied := make(map[int]bool, len(existing))
	for _, e := range existing {
		applied[e.Version] = true
	}
	var pending []rivermigrate.Migration
	for _, v := range m.migrator.AllVersions() {
		if !applied[v.Version] {
			pending = append(pending, v)
		}
	}
	return riverMigrations(pending, time.Time{}), nil
}

func (m *migrations[TTx]) History(ctx context.Context) ([]migrate.Migration, error) {
	existing, err := m.migrator.ExistingVersions(ctx)
	if err != nil || len(existing) == 0 {
		return nil, err
	}
	// River's API names the applied versions but not when each was.
	rows, err := m.db.Query(ctx, `SELECT version, created_at FROM river_migration`)
	if err != nil {
		return nil, fmt.Errorf("jobs: migration history: %w", err)
	}
	defer rows.Close()
	appliedAt := make(map[int]time.Time, len(existing))
	for rows.Next() {
		var version int
		var at time.Time
		if err := rows.Scan(&version, sqldb.ScanTime(&at)); err != nil {
			return nil, fmt.Errorf("jobs: migration history: %w", err)
		}
		appliedAt[version] = at.UTC()
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("jobs: migration history: %w", err)
	}
	out := make([]migrate.Migration, 0, len(existing))
	for _, e := range existing {
		out = append(out, riverMigration(e.Version, e.Name, appliedAt[e.Version]))
	}
	return out, nil
}

func riverMigrations(versions []rivermigrate.Migration, appliedAt time.Time) []migrate.Migration {
	out := make([]migrate.Migration, 0, len(versions))
	for _, v := range versions {
		out = append(out, riverMigration(v.Version, v.Name, appliedAt))
	}
	return out
}

// riverMigration names a River migration after its file, as tenantry's own
// are: 004_pending_and_more.
func riverMigration(version int, name string, appliedAt time.Time) migrate.Migration {
	return migrate.Migration{
		Version:   int64(version),
		Name:      fmt.Sprintf("%03d_%s", version, strings.ReplaceAll(name, " ", "_")),
		AppliedAt: appliedAt,
	}
}

// New returns a queue on the control database.
func New(control sqldb.DB, cfg Config) (Queue, error) {
	switch db := control.(type) {
	case *sqlite.DB:
		return newQueue[*sql.Tx](riversqlite.New(db.SQL()), cfg)
	case *postgres.DB:
		return newQueue[pgx.Tx](riverpgxv5.New(db.Pool()), cfg)
	}
	return nil, fmt.Errorf("jobs: unsupported database %T", control)
}

type queue[TTx any] struct {
	client *river.Client[TTx]
	works  bool
}

func newQueue[TTx any](driver riverdriver.Driver[TTx], cfg Config) (*queue[TTx], error) {
	rc := &river.Config{
		Logger:            cfg.Logger,
		PeriodicJobs:      cfg.Periodic,
		FetchPollInterval: cfg.FetchPollInterval,
		// A job that keeps failing is retried for about a day, then
		// discarded and left visible in the dashboard.
		MaxAttempts: 10,
	}
	if cfg.RescueAfter > 0 {
		rc.RescueStuckJobsAfter = cfg.RescueAfter
		// River's default job timeout is a minute; a job must end
		// before it can be taken for lost.
		rc.JobTimeout = min(time.Minute, cfg.RescueAfter)
	}
	if cfg.Workers != nil {
		rc.Workers = cfg.Workers
		rc.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: max(cfg.MaxWorkers, 1)}}
	}
	client, err := river.NewClient(driver, rc)
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	return &queue[TTx]{client: client, works: cfg.Workers != nil}, nil
}

func (q *queue[TTx]) InsertTx(ctx context.Context, tx sqldb.Tx, args river.JobArgs, opts *river.InsertOpts) error {
	driverTx, ok := tx.Driver().(TTx)
	if !ok {
		return fmt.Errorf("jobs: transaction %T is not of the queue's database", tx.Driver())
	}
	if _, err := q.client.InsertTx(ctx, driverTx, args, opts); err != nil {
		return fmt.Errorf("jobs: insert %s: %w", args.Kind(), err)
	}
	return nil
}

func (q *queue[TTx]) Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) error {
	if _, err := q.client.Insert(ctx, args, opts); err != nil {
		return fmt.Errorf("jobs: insert %s: %w", args.Kind(), err)
	}
	return nil
}

func (q *queue[TTx]) Start(ctx context.Context) error {
	if !q.works {
		return nil
	}
	return q.client.Start(ctx)
}

// cancelGrace is how long cancelled jobs have to return once the deadline
// of a stop has passed.
const cancelGrace = 5 * time.Second

func (q *queue[TTx]) Stop(ctx context.Context) error {
	if !q.works {
		return nil
	}
	err := q.client.Stop(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		// Jobs still running past the deadline are cancelled; River
		// retries them later. That too is bounded, so that a queue that
		// cannot stop, its database gone say, does not hold the process
		// open forever.
		cancelCtx, cancel := context.WithTimeout(context.Background(), cancelGrace)
		defer cancel()
		return q.client.StopAndCancel(cancelCtx)
	}
	return err
}

func (q *queue[TTx]) UIEndpoints() uiendpoints.Bundle { return riverui.NewEndpoints(q.client, nil) }

// Func adapts a function to a River worker.
type Func[T river.JobArgs] struct {
	river.WorkerDefaults[T]
	Do func(ctx context.Context, job *river.Job[T]) error
}

// Work implements river.Worker.
func (f *Func[T]) Work(ctx context.Context, job *river.Job[T]) error { return f.Do(ctx, job) }

// Every returns a periodic job enqueuing args every interval, at most once
// per interval whatever the number of processes, and once at start.
func Every(interval time.Duration, args river.JobArgs) *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(interval), func() (river.JobArgs, *river.InsertOpts) {
		return args, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: interval}}
	}, &river.PeriodicJobOpts{RunOnStart: true})
}

// Count is how many jobs of one kind are in one state.
type Count struct {
	Kind, State string
	Jobs        int64
}

// Counts reports the queue's jobs by kind and state. River deletes
// finished jobs after a day, so the table it reads stays small.
func Counts(ctx context.Context, control sqldb.Querier) ([]Count, error) {
	rows, err := control.Query(ctx, `SELECT kind, CAST(state AS TEXT), count(*) FROM river_job GROUP BY kind, state`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Count
	for rows.Next() {
		var c Count
		if err := rows.Scan(&c.Kind, &c.State, &c.Jobs); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
