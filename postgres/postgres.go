// Package postgres is the production SQL engine: databases are reached through
// pgx connection pools, and tenant databases are real PostgreSQL databases
// created and dropped on the same server (or any server the tenant URL
// template points to).
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/tenantry/tenantry/sqldb"
)

var _ sqldb.DB = (*DB)(nil)

// DB is an open PostgreSQL database.
type DB struct {
	pool *pgxpool.Pool

	sqlOnce sync.Once
	sqlDB   *sql.DB
}

// Open connects to the database described by config, holding at most
// maxConns connections.
func Open(ctx context.Context, config *pgxpool.Config, maxConns int) (*DB, error) {
	config = config.Copy()
	config.MaxConns = int32(maxConns)
	config.MinConns = 0
	// Idle connections are given back so that a quiet tenant does not pin
	// server slots; the tenant manager closes whole pools on top of this.
	config.MaxConnIdleTime = 5 * time.Minute
	pool, err := pgxpool.NewWithConfig(ctx, config)
	if err != nil {
		return nil, fmt.Errorf("open postgres database %s: %w", config.ConnConfig.Database, err)
	}
	return &DB{pool: pool}, nil
}

// ParseURL parses a connection string in URL or keyword/value form.
func ParseURL(url string) (*pgxpool.Config, error) {
	config, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error can echo the URL, password included.
		return nil, errors.New("invalid PostgreSQL connection string")
	}
	return config, nil
}

// Pool returns the underlying pgx pool, for libraries that need one (the job
// queue).
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// SQL returns a database/sql view of the pool, for libraries that need one
// (migrations). It is closed with the DB; callers must not close it.
func (db *DB) SQL() *sql.DB {
	db.sqlOnce.Do(func() { db.sqlDB = stdlib.OpenDBFromPool(db.pool) })
	return db.sqlDB
}

// Dialect implements sqldb.DB.
func (db *DB) Dialect() sqldb.Dialect { return sqldb.Postgres }

// Ping implements sqldb.DB.
func (db *DB) Ping(ctx context.Context) error { return translate(db.pool.Ping(ctx)) }

// OpenConnections implements sqldb.DB.
func (db *DB) OpenConnections() int { return int(db.pool.Stat().TotalConns()) }

// MaxConnections implements sqldb.DB.
func (db *DB) MaxConnections() int { return int(db.pool.Config().MaxConns) }

// Close closes the pool, waiting for borrowed connections to come back.
func (db *DB) Close() error {
	var err error
	if db.sqlDB != nil {
		err = db.sqlDB.Close()
	}
	db.pool.Close()
	return err
}

// Exec implements sqldb.Querier.
func (db *DB) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := db.pool.Exec(ctx, query, args...)
	return tag.RowsAffected(), translate(err)
}

// Query implements sqldb.Querier.
func (db *DB) Query(ctx context.Context, query string, args ...any) (sqldb.Rows, error) {
	r, err := db.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, translate(err)
	}
	return rows{r}, nil
}

// QueryRow implements sqldb.Querier.
func (db *DB) QueryRow(ctx context.Context, query string, args ...any) sqldb.Row {
	return row{db.pool.QueryRow(ctx, query, args...)}
}

// InTx implements sqldb.DB.
func (db *DB) InTx(ctx context.Context, fn func(sqldb.Tx) error) (err error) {
	pgxTx, err := db.pool.Begin(ctx)
	if err != nil {
		return translate(err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = pgxTx.Rollback(context.WithoutCancel(ctx))
			panic(p)
		}
	}()
	if err := fn(tx{pgxTx}); err != nil {
		_ = pgxTx.Rollback(context.WithoutCancel(ctx))
		return err
	}
	return translate(pgxTx.Commit(ctx))
}

type tx struct{ tx pgx.Tx }

func (t tx) Driver() any { return t.tx }

// Dialect implements sqldb.Querier.
func (t tx) Dialect() sqldb.Dialect { return sqldb.Postgres }

func (t tx) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := t.tx.Exec(ctx, query, args...)
	return tag.RowsAffected(), translate(err)
}

func (t tx) Query(ctx context.Context, query string, args ...any) (sqldb.Rows, error) {
	r, err := t.tx.Query(ctx, query, args...)
	if err != nil {
		return nil, translate(err)
	}
	return rows{r}, nil
}

func (t tx) QueryRow(ctx context.Context, query string, args ...any) sqldb.Row {
	return row{t.tx.QueryRow(ctx, query, args...)}
}

type row struct{ r pgx.Row }

func (r row) Scan(dest ...any) error { return translate(r.r.Scan(dest...)) }

type rows struct{ r pgx.Rows }

func (r rows) Next() bool             { return r.r.Next() }
func (r rows) Scan(dest ...any) error { return translate(r.r.Scan(dest...)) }
func (r rows) Err() error             { return translate(r.r.Err()) }
func (r rows) Close()                 { r.r.Close() }

// translate maps driver errors onto the sqldb sentinels, keeping the driver
// error in the chain for logs.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return sqldb.ErrNoRows
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505":
			return fmt.Errorf("%w: %w", sqldb.ErrUniqueViolation, err)
		case pgErr.Code == "23503":
			return fmt.Errorf("%w: %w", sqldb.ErrForeignKeyViolation, err)
		case pgErr.Code == "25006":
			// read_only_sql_transaction: a moving tenant's fence.
			return fmt.Errorf("%w: %w", sqldb.ErrReadOnly, err)
		case pgErr.Code == "40P01", pgErr.Code == "40001":
			// A deadlock or serialization failure chose this transaction
			// to give way; it may succeed when retried.
			return fmt.Errorf("%w: %w", sqldb.ErrRetry, err)
		case strings.HasPrefix(pgErr.Code, "22"):
			// Data exceptions: a NUL in text, a malformed value, a
			// number out of range.
			return fmt.Errorf("%w: %w", sqldb.ErrInvalidValue, err)
		case unavailableCode(pgErr.Code):
			return fmt.Errorf("%w: %w", sqldb.ErrUnavailable, err)
		}
		return err
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	if errors.As(err, &connectErr) || errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || connClosed(err) {
		return fmt.Errorf("%w: %w", sqldb.ErrUnavailable, err)
	}
	return err
}

// connClosed reports pgx's error for a connection the server closed under
// it, as when a moved tenant's old database is dropped with its sessions:
// pgx exports no value for it, only its text.
func connClosed(err error) bool {
	return strings.HasSuffix(err.Error(), "conn closed")
}

// unavailableCode reports the SQLSTATEs of a server that cannot serve the
// database now: connection exceptions, a database that does not exist (it
// was dropped, or is being moved), a server shutting down or starting, too
// many connections.
func unavailableCode(code string) bool {
	switch {
	case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "57P"):
		return true
	case code == "3D000", code == "53300":
		return true
	}
	return false
}
