// Package sqlite is the embedded SQL engine: databases are files opened with
// the pure-Go modernc driver, in WAL mode, with fully synchronous commits so
// that a committed transaction survives a crash of the process or the host.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/tenantry/tenantry/sqldb"
)

var _ sqldb.DB = (*DB)(nil)

// DB is an open SQLite database. Writes go through a single connection, which
// is SQLite's own concurrency model; reads may use a separate pool of
// read-only connections, which WAL mode lets run beside the writer.
type DB struct {
	path  string
	write *sql.DB
	read  *sql.DB
	// Statements are prepared once per pool and reused: parsing and
	// planning the SQL again on every call was a seventh of the CPU an
	// authenticated request costs.
	writeStmts *statements
	readStmts  *statements
}

// Options tune how a database file is opened.
type Options struct {
	// ReadConns is the number of read-only connections opened beside the
	// writer. Zero sends reads through the writer's single connection, which
	// keeps a rarely used database to one open file handle set.
	ReadConns int
	// ReadIdleTimeout closes a read-only connection unused for this long;
	// zero keeps them open.
	ReadIdleTimeout time.Duration
	// MustExist refuses to create the file: every connection, including
	// those opened later, fails if it has gone, rather than starting an
	// empty database in its place.
	MustExist bool
	// CacheKiB is the page cache of each connection, in KiB. Zero keeps
	// SQLite's default, 2,000 KiB.
	CacheKiB int
}

// Open opens the database file at path, creating it unless opts.MustExist.
func Open(path string, opts Options) (*DB, error) {
	write, err := sql.Open("sqlite", dsn(path, false, opts))
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxIdleTime(0)
	write.SetConnMaxLifetime(0)
	db := &DB{path: path, write: write, read: write, writeStmts: newStatements(write)}
	db.readStmts = db.writeStmts
	// Force the file and WAL mode into existence now, so that errors surface
	// at open time rather than on the first query.
	if err := pingWhileClosing(write); err != nil {
		_ = write.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, translate(err))
	}
	if opts.ReadConns > 0 {
		read, err := sql.Open("sqlite", dsn(path, true, opts))
		if err != nil {
			_ = write.Close()
			return nil, fmt.Errorf("open sqlite %s for reading: %w", path, err)
		}
		read.SetMaxOpenConns(opts.ReadConns)
		read.SetMaxIdleConns(opts.ReadConns)
		read.SetConnMaxIdleTime(opts.ReadIdleTimeout)
		db.read, db.readStmts = read, newStatements(read)
	}
	return db, nil
}

// openRetryFor bounds how long opening waits out another connection's close.
const openRetryFor = 10 * time.Second

// pingWhileClosing opens the first connection. The last connection to a WAL
// database takes an exclusive lock while it cleans up the WAL on close, and
// a connection opening in that instant gets SQLITE_BUSY without the busy
// handler being consulted; the window is short, so waiting it out is right.
func pingWhileClosing(db *sql.DB) error {
	deadline := time.Now().Add(openRetryFor)
	wait := 5 * time.Millisecond
	for {
		err := db.Ping()
		var se *sqlite.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		time.Sleep(wait)
		wait = min(2*wait, 100*time.Millisecond)
	}
}

func dsn(path string, readOnly bool, opts Options) string {
	q := url.Values{}
	if opts.MustExist {
		q.Set("mode", "rw")
	}
	if opts.CacheKiB > 0 {
		// A negative size is in KiB rather than pages.
		q.Add("_pragma", "cache_size(-"+strconv.Itoa(opts.CacheKiB)+")")
	}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(FULL)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		// Take the write lock at BEGIN: a deferred transaction that later
		// upgrades can fail with SQLITE_BUSY when another process writes.
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode()
}

// SQL returns the writer's database/sql handle, for libraries that need one
// (migrations, the job queue).
func (db *DB) SQL() *sql.DB { return db.write }

// Dialect implements sqldb.DB.
func (db *DB) Dialect() sqldb.Dialect { return sqldb.SQLite }

// Ping implements sqldb.DB.
func (db *DB) Ping(ctx context.Context) error {
	return translate(db.read.PingContext(ctx))
}

// OpenConnections implements sqldb.DB.
func (db *DB) OpenConnections() int {
	n := db.write.Stats().OpenConnections
	if db.read != db.write {
		n += db.read.Stats().OpenConnections
	}
	return n
}

// MaxConnections implements sqldb.DB.
func (db *DB) MaxConnections() int {
	n := db.write.Stats().MaxOpenConnections
	if db.read != db.write {
		n += db.read.Stats().MaxOpenConnections
	}
	return n
}

// Close closes every connection.
func (db *DB) Close() error {
	db.writeStmts.close()
	err := db.write.Close()
	if db.read != db.write {
		db.readStmts.close()
		err = errors.Join(err, db.read.Close())
	}
	return err
}

// Exec implements sqldb.Querier.
func (db *DB) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	st, err := db.writeStmts.get(ctx, query)
	if err != nil {
		return 0, translate(err)
	}
	return exec(ctx, st, query, args)
}

// Query implements sqldb.Querier.
func (db *DB) Query(ctx context.Context, query string, args ...any) (sqldb.Rows, error) {
	st, err := db.pool(query).get(ctx, query)
	if err != nil {
		return nil, translate(err)
	}
	return queryRows(ctx, st, query, args)
}

// QueryRow implements sqldb.Querier.
func (db *DB) QueryRow(ctx context.Context, query string, args ...any) sqldb.Row {
	st, err := db.pool(query).get(ctx, query)
	if err != nil {
		return errRow{translate(err)}
	}
	return row{st.QueryRowContext(ctx, query, convertArgs(args)...)}
}

// pool picks the connections for a statement that returns rows: the
// read-only ones for a SELECT, the writer for anything else (an UPDATE ...
// RETURNING, say).
func (db *DB) pool(query string) *statements {
	if isSelect(query) {
		return db.readStmts
	}
	return db.writeStmts
}

func isSelect(query string) bool {
	q := strings.TrimLeft(query, " \t\r\n(")
	return len(q) >= 6 && strings.EqualFold(q[:6], "SELECT")
}

// InTx implements sqldb.DB.
func (db *DB) InTx(ctx context.Context, fn func(sqldb.Tx) error) (err error) {
	sqlTx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return translate(err)
	}
	defer db.writeStmts.prepareDeferred(context.WithoutCancel(ctx))
	defer func() {
		if p := recover(); p != nil {
			_ = sqlTx.Rollback()
			panic(p)
		}
	}()
	if err := fn(tx{sqlTx, db.writeStmts}); err != nil {
		_ = sqlTx.Rollback()
		return err
	}
	return translate(sqlTx.Commit())
}

func exec(ctx context.Context, st statement, query string, args []any) (int64, error) {
	res, err := st.ExecContext(ctx, query, convertArgs(args)...)
	if err != nil {
		return 0, translate(err)
	}
	n, err := res.RowsAffected()
	return n, translate(err)
}

func queryRows(ctx context.Context, st statement, query string, args []any) (sqldb.Rows, error) {
	r, err := st.QueryContext(ctx, query, convertArgs(args)...)
	if err != nil {
		return nil, translate(err)
	}
	return rows{r}, nil
}

type tx struct {
	tx    *sql.Tx
	stmts *statements
}

func (t tx) Driver() any { return t.tx }

// Dialect implements sqldb.Querier.
func (t tx) Dialect() sqldb.Dialect { return sqldb.SQLite }

func (t tx) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return exec(ctx, t.stmts.inTx(ctx, t.tx, query), query, args)
}

func (t tx) Query(ctx context.Context, query string, args ...any) (sqldb.Rows, error) {
	return queryRows(ctx, t.stmts.inTx(ctx, t.tx, query), query, args)
}

func (t tx) QueryRow(ctx context.Context, query string, args ...any) sqldb.Row {
	return row{t.stmts.inTx(ctx, t.tx, query).QueryRowContext(ctx, query, convertArgs(args)...)}
}

type row struct{ r *sql.Row }

func (r row) Scan(dest ...any) error { return translate(r.r.Scan(dest...)) }

// errRow is a row whose statement could not be prepared.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

type rows struct{ r *sql.Rows }

func (r rows) Next() bool             { return r.r.Next() }
func (r rows) Scan(dest ...any) error { return translate(r.r.Scan(dest...)) }
func (r rows) Err() error             { return translate(r.r.Err()) }
func (r rows) Close()                 { _ = r.r.Close() }

// convertArgs stores times in the fixed layout; every other type is passed
// through to the driver unchanged. The caller's slice is never modified.
func convertArgs(args []any) []any {
	var out []any
	for i, a := range args {
		var converted any
		switch v := a.(type) {
		case time.Time:
			converted = v.UTC().Format(sqldb.TimeLayout)
		case *time.Time:
			if v != nil {
				converted = v.UTC().Format(sqldb.TimeLayout)
			}
		default:
			if out != nil {
				out[i] = a
			}
			continue
		}
		if out == nil {
			out = make([]any, len(args))
			copy(out, args[:i])
		}
		out[i] = converted
	}
	if out == nil {
		return args
	}
	return out
}

// translate maps driver errors onto the sqldb sentinels, keeping the driver
// error in the chain for logs.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return sqldb.ErrNoRows
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %w", sqldb.ErrUniqueViolation, err)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fmt.Errorf("%w: %w", sqldb.ErrForeignKeyViolation, err)
		}
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT,
			sqlite3.SQLITE_FULL, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			// The file is gone, unreadable or damaged, the disk is
			// full, or writers stayed busy past the timeout.
			return fmt.Errorf("%w: %w", sqldb.ErrUnavailable, err)
		case sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_MISMATCH:
			return fmt.Errorf("%w: %w", sqldb.ErrInvalidValue, err)
		}
	}
	return err
}
