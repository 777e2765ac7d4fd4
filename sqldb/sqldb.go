// Package sqldb is the seam between stores and the two SQL engines. Stores
// write one query text, with $1-style placeholders, that both SQLite and
// PostgreSQL accept; the sqlite and postgres packages implement DB and
// translate their drivers' errors into the sentinels declared here, so no
// driver error type leaks above them.
package sqldb

import (
	"context"
	"errors"
	"strconv"
	"time"
)

// Dialect names a SQL engine, for the rare query that must differ.
type Dialect string

// The dialects tenantry runs on.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Sentinel errors returned by every engine.
var (
	// ErrNoRows is returned by Row.Scan when the query matched nothing.
	ErrNoRows = errors.New("sqldb: no rows in result set")
	// ErrUniqueViolation is returned when a write breaks a unique constraint.
	ErrUniqueViolation = errors.New("sqldb: unique constraint violated")
	// ErrForeignKeyViolation is returned when a write breaks a foreign key.
	ErrForeignKeyViolation = errors.New("sqldb: foreign key constraint violated")
	// ErrUnavailable is returned when the database cannot serve at the
	// moment: it cannot be reached, the connection was lost, it no longer
	// exists, its storage fails, or it stayed busy. Retrying later may
	// succeed; the statement's input is not at fault.
	ErrUnavailable = errors.New("sqldb: database unavailable")
	// ErrReadOnly is returned when the database refuses writes for a
	// while, as a tenant database does during the last moments of a move
	// to another server; reads go on, and writes may be retried shortly.
	ErrReadOnly = errors.New("sqldb: database read-only for now")
	// ErrRetry is returned when the database gave up a transaction so
	// that another could go on (a deadlock, a serialization failure):
	// retrying it may succeed.
	ErrRetry = errors.New("sqldb: transaction given up; retry it")
	// ErrInvalidValue is returned when the engine refuses a value a
	// statement carries (text it cannot store, a number out of range): the
	// input is at fault, not the server.
	ErrInvalidValue = errors.New("sqldb: value refused by the database")
)

// Querier runs statements. DB and Tx both satisfy it, so a store function can
// run inside or outside a transaction.
type Querier interface {
	Exec(ctx context.Context, query string, args ...any) (rowsAffected int64, err error)
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) Row
	// Dialect names the engine, for the rare query that must differ.
	Dialect() Dialect
}

// Rows iterates over a result set. Close must be called, usually deferred.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Row is the result of QueryRow; Scan reports ErrNoRows when nothing matched.
type Row interface {
	Scan(dest ...any) error
}

// Tx is a database transaction.
type Tx interface {
	Querier
	// Driver returns the engine's own transaction value (*sql.Tx for SQLite,
	// pgx.Tx for PostgreSQL) for libraries that must join the transaction,
	// such as the job queue's transactional insert.
	Driver() any
}

// DB is an open database of either engine.
type DB interface {
	Querier
	// InTx runs fn in a transaction, committing when fn returns nil and
	// rolling back otherwise.
	InTx(ctx context.Context, fn func(tx Tx) error) error
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// OpenConnections reports how many connections the handle holds now.
	OpenConnections() int
	// MaxConnections is the most connections the handle will ever hold.
	MaxConnections() int
	Close() error
}

// Now returns the current time truncated to the microsecond, the precision
// both engines store, so that a value read back equals the value written.
func Now() time.Time {
	return time.Now().UTC().Truncate(time.Microsecond)
}

// Limit renders a LIMIT clause with n written into the statement instead of
// bound to it. SQLite plans a statement whose LIMIT is a parameter for that
// parameter's value, and so prepares it again each time the parameter is
// bound: a cached statement would cost a full prepare on every execution.
// Limits are few and small, so the statements stay few.
func Limit(n int) string { return "LIMIT " + strconv.Itoa(n) }

// Underlying returns the engine's own DB beneath any wrapper that offers
// Unwrap() DB, for code that needs what only the engine's type has (a
// database/sql handle, a schema lock) and would not find it on a wrapper.
func Underlying(db DB) DB {
	for {
		w, ok := db.(interface{ Unwrap() DB })
		if !ok {
			return db
		}
		db = w.Unwrap()
	}
}
