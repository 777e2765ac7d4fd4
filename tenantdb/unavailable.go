package tenantdb

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/sqldb"
)

// RetryAfter is how long a tenant database that failed is left alone before
// it is tried again; requests meanwhile are refused at once rather than
// each waiting for a connection attempt that will fail.
const RetryAfter = 5 * time.Second

// unavailableError reports that a tenant's database cannot serve. It carries
// the engine's error for logs and errors.Is (ErrNotExist, say), and a
// SERVICE_UNAVAILABLE for clients, so that the failure stays the tenant's
// own: an answer of 503 with Retry-After on its routes, never a 500.
type unavailableError struct {
	cause  error
	client *tenantry.Error
}

func unavailable(cause error, retryIn time.Duration) error {
	return &unavailableError{cause: cause, client: &tenantry.Error{
		Code:       tenantry.EUnavailable,
		Message:    "This tenant's data is temporarily unavailable; try again later",
		RetryAfter: max(1, int(math.Ceil(retryIn.Seconds()))),
	}}
}

func (e *unavailableError) Error() string   { return "tenant database unavailable: " + e.cause.Error() }
func (e *unavailableError) Unwrap() []error { return []error{e.cause, e.client} }

// IsUnavailable reports whether err says a tenant database could not serve.
func IsUnavailable(err error) bool {
	var ue *unavailableError
	return errors.As(err, &ue)
}

// readOnlyError reports a write refused while the tenant's database is
// read-only: clients retry it shortly.
type readOnlyError struct{ cause error }

// readOnlyRetryAfter is the Retry-After of a write refused for a moment.
const readOnlyRetryAfter = 2

func (e *readOnlyError) Error() string { return "tenant database read-only: " + e.cause.Error() }
func (e *readOnlyError) Unwrap() []error {
	return []error{e.cause, &tenantry.Error{
		Code:       tenantry.EUnavailable,
		Message:    "This tenant's data is read-only for a moment; retry the change shortly",
		RetryAfter: readOnlyRetryAfter,
	}}
}

// outage is a tenant database that failed, until it answers again.
type outage struct {
	cause error
	// retryAt is when the next attempt to open it may be made.
	retryAt time.Time
}

// guarded is an open tenant database whose failures to serve mark its entry
// broken, so that it is closed as soon as its last lease ends and reopened
// (after RetryAfter) instead of being handed out again, and are reported as
// the tenant's unavailability.
type guarded struct {
	sqldb.DB
	m *Manager
	e *entry
}

func (g *guarded) check(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sqldb.ErrReadOnly) || errors.Is(err, sqldb.ErrRetry) {
		// The database serves; only this write waits, for a moment.
		return &readOnlyError{cause: err}
	}
	if !errors.Is(err, sqldb.ErrUnavailable) {
		return err
	}
	g.m.broke(g.e, err)
	return unavailable(err, RetryAfter)
}

func (g *guarded) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	n, err := g.DB.Exec(ctx, query, args...)
	return n, g.check(err)
}

func (g *guarded) Query(ctx context.Context, query string, args ...any) (sqldb.Rows, error) {
	rows, err := g.DB.Query(ctx, query, args...)
	if err != nil {
		return nil, g.check(err)
	}
	return guardedRows{Rows: rows, g: g}, nil
}

func (g *guarded) QueryRow(ctx context.Context, query string, args ...any) sqldb.Row {
	return guardedRow{row: g.DB.QueryRow(ctx, query, args...), g: g}
}

func (g *guarded) InTx(ctx context.Context, fn func(tx sqldb.Tx) error) error {
	return g.check(g.DB.InTx(ctx, fn))
}

func (g *guarded) Ping(ctx context.Context) error { return g.check(g.DB.Ping(ctx)) }

// Unwrap returns the engine's database, for what needs its own capabilities
// (migrations); see sqldb.Underlying.
func (g *guarded) Unwrap() sqldb.DB { return g.DB }

type guardedRow struct {
	row sqldb.Row
	g   *guarded
}

func (r guardedRow) Scan(dest ...any) error { return r.g.check(r.row.Scan(dest...)) }

type guardedRows struct {
	sqldb.Rows
	g *guarded
}

func (r guardedRows) Scan(dest ...any) error { return r.g.check(r.Rows.Scan(dest...)) }
func (r guardedRows) Err() error             { return r.g.check(r.Rows.Err()) }
