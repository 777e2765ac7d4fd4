package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// schemaLockKey is the key of the session advisory lock held around schema
// changes: the bytes of "tenantry". Advisory locks belong to one database,
// so each tenant database has its own. Goose's lock uses another key
// (crc64 of "goose"): it is taken inside this one, never the same.
const schemaLockKey int64 = 0x74656e616e747279

// unlockTimeout bounds the release of the schema lock, which must not wait
// on the caller's context: it may be the cancelled one.
const unlockTimeout = 10 * time.Second

// LockSchema takes the database's schema lock, waiting while another
// session holds it, and returns the function that releases it.
//
// The lock is held by a connection of its own, opened for it outside the
// pool: the pool may be as small as the one connection the migrations run
// on, and a lock held by a pooled connection would outlive an unlock that
// failed. Ending this session releases the lock whatever happens. While a
// tenant database is migrated nothing else uses it, so with two connections
// per tenant database (the default) the lock's and the migration's stay
// within the database's share of the tenant connection cap.
func (db *DB) LockSchema(ctx context.Context) (unlock func() error, err error) {
	conn, err := pgx.ConnectConfig(ctx, db.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("lock schema: %w", err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", schemaLockKey); err != nil {
		closeCtx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
		defer cancel()
		_ = conn.Close(closeCtx)
		return nil, fmt.Errorf("lock schema: %w", err)
	}
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
		defer cancel()
		// The explicit unlock lets the next waiter in without waiting
		// for the server to notice that the session ended; should it
		// fail, ending the session releases the lock all the same.
		_, _ = conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", schemaLockKey)
		if err := conn.Close(ctx); err != nil {
			return fmt.Errorf("unlock schema: %w", err)
		}
		return nil
	}, nil
}
