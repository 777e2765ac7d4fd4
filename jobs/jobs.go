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
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"riverqueue.com/riverui"
	"riverqueue.com/riverui/uiendpoints"

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
	Logger            *slog.Logger
}

// Migrate brings River's tables in the control database up to date.
func Migrate(ctx context.Context, control sqldb.DB) error {
	switch db := control.(type) {
	case *sqlite.DB:
		return migrate(ctx, riversqlite.New(db.SQL()))
	case *postgres.DB:
		return migrate(ctx, riverpgxv5.New(db.Pool()))
	}
	return fmt.Errorf("jobs: unsupported database %T", control)
}

func migrate[TTx any](ctx context.Context, driver riverdriver.Driver[TTx]) error {
	m, err := rivermigrate.New(driver, nil)
	if err != nil {
		return fmt.Errorf("jobs: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("jobs: migrate: %w", err)
	}
	return nil
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
