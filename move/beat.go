package move

import (
	"context"
	"time"

	"github.com/tenantry/tenantry/sqldb"
)

// beat renews the heartbeat of move id until ctx ends, and stops the move
// if it finds it given up: another process took its mover for dead.
func (m *Mover) beat(ctx context.Context, stop context.CancelFunc, id string) {
	t := time.NewTicker(m.cfg.StaleAfter / 5)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ours, err := heartbeat(ctx, m.control, id, sqldb.Now())
		if err != nil {
			m.cfg.Logger.Warn("renewing a move's heartbeat", "move_id", id, "error", err)
			continue
		}
		if !ours {
			// Done, in the moment since the last beat; or given up.
			var state string
			if err := m.control.QueryRow(ctx, `SELECT state FROM tenant_moves WHERE id = $1`, id).Scan(&state); err == nil && state == stateDone {
				return
			}
			m.cfg.Logger.Error("the move was given up by another process; stopping", "move_id", id)
			stop()
			return
		}
	}
}
