package outbox

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/sqldb"
)

// Published is an event with its position in its tenant's stream.
type Published struct {
	Position int64
	Event    tenantry.Event
}

// Feed returns up to limit published events of a tenant database after
// position after, in stream order. Positions are given at publication, in
// the order of publication, so a reader paging with the last position it saw
// never misses an event (until retention prunes it).
func Feed(ctx context.Context, q sqldb.Querier, after int64, limit int) ([]Published, error) {
	rows, err := q.Query(ctx, `
		SELECT position, payload FROM outbox
		WHERE position > $1 ORDER BY position `+sqldb.Limit(limit), after)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Published{}
	for rows.Next() {
		var p Published
		var payload string
		if err := rows.Scan(&p.Position, &payload); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(payload), &p.Event); err != nil {
			return nil, fmt.Errorf("event at position %d: %w", p.Position, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
