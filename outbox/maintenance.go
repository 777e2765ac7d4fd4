package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/tenantdb"
)

func unpublished(ctx context.Context, q sqldb.Querier) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&n)
	return n, err
}

// Sweep marks every stream that holds unpublished events, the platform's
// and the given tenants'. Writers mark their streams themselves; this is
// the safety net for a mark lost to anything unforeseen. It returns how
// many streams it marked.
func Sweep(ctx context.Context, control sqldb.DB, dbs *tenantdb.Manager, tenants []*tenantry.Tenant) (int, error) {
	marked := 0
	if n, err := unpublished(ctx, control); err != nil {
		return marked, err
	} else if n > 0 {
		if err := Mark(ctx, control, PlatformStream, ""); err != nil {
			return marked, err
		}
		marked++
	}
	var errs []error
	for _, t := range tenants {
		n, err := onTenant(ctx, dbs, t, func(db sqldb.DB) (int64, error) { return unpublished(ctx, db) })
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if n > 0 {
			if err := Mark(ctx, control, t.ID, t.DatabaseName); err != nil {
				return marked, err
			}
			marked++
		}
	}
	return marked, errors.Join(errs...)
}

// onTenant runs fn on a tenant's database. A tenant whose database cannot
// serve is skipped without an error, so that one tenant's outage holds up
// no other tenant's maintenance; the next run gets to it.
func onTenant(ctx context.Context, dbs *tenantdb.Manager, t *tenantry.Tenant, fn func(sqldb.DB) (int64, error)) (int64, error) {
	// A pass over every tenant must not leave each database it opened
	// open for the idle timeout.
	lease, err := dbs.AcquireTransient(ctx, tenantdb.RefOf(t))
	if tenantdb.IsUnavailable(err) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("tenant %s: %w", t.ID, err)
	}
	defer lease.Release()
	n, err := fn(lease.DB())
	if tenantdb.IsUnavailable(err) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("tenant %s: %w", t.ID, err)
	}
	return n, nil
}

// Prune deletes events published before cutoff from the control outbox and
// the given tenants', and the record of events consumed before it. It
// returns how many rows it deleted.
func Prune(ctx context.Context, control sqldb.DB, dbs *tenantdb.Manager, tenants []*tenantry.Tenant, cutoff time.Time) (int64, error) {
	const published = `DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < $1`
	total, err := control.Exec(ctx, published, cutoff)
	if err != nil {
		return 0, err
	}
	n, err := control.Exec(ctx, `DELETE FROM consumed_events WHERE consumed_at < $1`, cutoff)
	if err != nil {
		return total, err
	}
	total += n
	var errs []error
	for _, t := range tenants {
		n, err := onTenant(ctx, dbs, t, func(db sqldb.DB) (int64, error) { return db.Exec(ctx, published, cutoff) })
		if err != nil {
			errs = append(errs, err)
		}
		total += n
	}
	return total, errors.Join(errs...)
}

// Consume records that consumer handled the event, in the transaction of
// what the handling did. It reports false when the event was handled
// before, and the caller must then do nothing.
func Consume(ctx context.Context, tx sqldb.Querier, consumer, eventID string) (bool, error) {
	n, err := tx.Exec(ctx, `
		INSERT INTO consumed_events (consumer, event_id, consumed_at) VALUES ($1, $2, $3)
		ON CONFLICT (consumer, event_id) DO NOTHING`, consumer, eventID, sqldb.Now())
	return n == 1, err
}
