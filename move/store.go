package move

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/sqldb"
)

// States of a move.
const (
	stateCopying   = "copying"
	stateSwitching = "switching"
	stateDone      = "done"
	stateFailed    = "failed"
)

// record is a row of tenant_moves.
type record struct {
	id, tenantID string
	from, to     string // "" is the default server
	database     string
	state        string
	// keepTarget is set when the target's database is not the move's own
	// and must survive the move being undone.
	keepTarget bool
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// begin records a move under way; the unique index on moves under way
// refuses a second one for the same tenant. A deleted tenant is not moved:
// it may be purged, and the purge's first step takes the same row lock as
// begin, then refuses a tenant with a move under way, so that the two never
// overlap.
func begin(ctx context.Context, control sqldb.DB, r *record, owner string, now time.Time) error {
	r.id = uuid.NewString()
	r.state = stateCopying
	return control.InTx(ctx, func(tx sqldb.Tx) error {
		n, err := tx.Exec(ctx, `UPDATE tenants SET updated_at = updated_at WHERE id = $1 AND deleted_at IS NULL`, r.tenantID)
		if err != nil {
			return err
		} else if n != 1 {
			return tenantry.Errorf(tenantry.EConflict, "The tenant is deleted: it is not moved")
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO tenant_moves (id, tenant_id, from_server, to_server, state, owner, started_at, heartbeat_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`,
			r.id, r.tenantID, nullable(r.from), nullable(r.to), r.state, owner, now)
		if errors.Is(err, sqldb.ErrUniqueViolation) {
			return tenantry.Errorf(tenantry.EConflict, "A move of this tenant is already under way")
		}
		return err
	})
}

// heartbeat renews a move's heartbeat, and reports whether it is still
// under way: the janitor may have given it up.
func heartbeat(ctx context.Context, control sqldb.Querier, id string, now time.Time) (bool, error) {
	n, err := control.Exec(ctx, `UPDATE tenant_moves SET heartbeat_at = $2 WHERE id = $1 AND state IN ($3, $4)`,
		id, now, stateCopying, stateSwitching)
	return n == 1, err
}

// advance moves a move from one state to the next, unless the janitor
// gave it up meanwhile.
func advance(ctx context.Context, control sqldb.Querier, id, from, to string, now time.Time) (bool, error) {
	n, err := control.Exec(ctx, `UPDATE tenant_moves SET state = $3, heartbeat_at = $4 WHERE id = $1 AND state = $2`, id, from, to, now)
	return n == 1, err
}

// fail ends a move that did not complete.
func fail(ctx context.Context, control sqldb.Querier, id string, cause string, now time.Time) error {
	_, err := control.Exec(ctx, `
		UPDATE tenant_moves SET state = $2, error = $3, finished_at = $4
		WHERE id = $1 AND state IN ($5, $6)`, id, stateFailed, truncate(cause, 2000), now, stateCopying, stateSwitching)
	return err
}

// switchOver points the tenant at its new server and ends the move, in one
// transaction, provided the move is still under way and the tenant still
// where it started.
func switchOver(ctx context.Context, control sqldb.DB, r *record, now time.Time) error {
	return control.InTx(ctx, func(tx sqldb.Tx) error {
		n, err := tx.Exec(ctx, `
			UPDATE tenant_moves SET state = $2, finished_at = $3, heartbeat_at = $3
			WHERE id = $1 AND state = $4`, r.id, stateDone, now, stateSwitching)
		if err != nil {
			return err
		} else if n != 1 {
			return errors.New("the move was given up while it switched")
		}
		n, err = tx.Exec(ctx, `
			UPDATE tenants SET server = $2, updated_at = $3
			WHERE id = $1 AND COALESCE(server, '') = $4`, r.tenantID, nullable(r.to), now, r.from)
		if err != nil {
			return err
		} else if n != 1 {
			return errors.New("the tenant is no longer on the server the move started from")
		}
		return nil
	})
}

// stale lists the moves under way whose mover has not been heard of since
// before.
func stale(ctx context.Context, control sqldb.Querier, before time.Time) ([]record, error) {
	rows, err := control.Query(ctx, `
		SELECT m.id, m.tenant_id, COALESCE(m.from_server, ''), COALESCE(m.to_server, ''), t.database_name, m.state
		FROM tenant_moves m JOIN tenants t ON t.id = m.tenant_id
		WHERE m.state IN ($1, $2) AND m.heartbeat_at < $3
		ORDER BY m.started_at`, stateCopying, stateSwitching, before)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []record
	for rows.Next() {
		var r record
		if err := rows.Scan(&r.id, &r.tenantID, &r.from, &r.to, &r.database, &r.state); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
