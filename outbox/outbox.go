// Package outbox makes tenantry's events durable and delivers them: every
// event is written to an outbox table in the same transaction as the change
// it describes, so a rolled-back change emits nothing and a crash after
// commit loses nothing, and a relay later publishes what is unpublished, at
// least once, each event keeping its event_id.
//
// There are two kinds of outbox. The control database's holds events about
// accounts and tenants; each tenant database holds its own, for documents and
// files. The relay must not poll ten thousand tenant databases to find the
// few with something to publish, so every stream (the platform's and each
// tenant's) has a row in the control database's outbox_pending table while
// it may hold unpublished events:
//
//   - A writer marks its stream pending before it commits. For the control
//     outbox the mark is in the same transaction; for a tenant database it
//     is a separate write to the control database made before the tenant
//     transaction commits, so that a crash just after the commit leaves a
//     mark (a transaction that then rolls back costs one useless visit).
//     A relay may claim the stream while that transaction is still open,
//     read nothing, and forget the mark; so after the commit the writer
//     marks again unless the row is there and unclaimed, which guarantees
//     a visit that starts after the commit.
//   - Each mark bumps the row's version. The relay claims a stream (a lease,
//     so that one relay at a time publishes it, in order), drains it, and
//     deletes the row only if the version is still the one it read; a mark
//     that arrived meanwhile keeps the row, and the stream is visited again.
//   - The relay thus visits only pending streams. A periodic safety sweep
//     re-marks any stream found with unpublished events, in case a mark was
//     ever lost to something this design did not foresee.
//
// Events of the control database that name a tenant (members, tenant
// changes) are forwarded into that tenant's outbox rather than published
// directly, so that each tenant's stream is ordered and numbered in one
// place: its database. Publishing a tenant's events gives each the next
// position of the tenant's stream, which the events API pages through.
package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/sqldb"
)

// PlatformStream names the control database's own stream in outbox_pending;
// tenant streams are named by tenant id.
const PlatformStream = "platform"

// NewEvent builds an event envelope. data is encoded as the event's data.
func NewEvent(eventType, tenantID, userID string, data any) (tenantry.Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return tenantry.Event{}, fmt.Errorf("encode %s event data: %w", eventType, err)
	}
	return tenantry.Event{
		EventID:   uuid.NewString(),
		EventType: eventType,
		Version:   tenantry.EventVersion,
		TenantID:  tenantID,
		UserID:    userID,
		Timestamp: sqldb.Now(),
		Data:      raw,
	}, nil
}

// Add writes ev into the outbox of the database q belongs to, which must be
// the database (and, in practice, the transaction) of the change ev
// describes.
func Add(ctx context.Context, q sqldb.Querier, ev tenantry.Event) error {
	payload, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	var tenantID any
	if ev.TenantID != "" {
		tenantID = ev.TenantID
	}
	_, err = q.Exec(ctx, `
		INSERT INTO outbox (event_id, event_type, tenant_id, payload, created_at)
		VALUES ($1, $2, $3, $4, $5)`, ev.EventID, ev.EventType, tenantID, string(payload), ev.Timestamp)
	if err != nil {
		return fmt.Errorf("write %s event: %w", ev.EventType, err)
	}
	return nil
}

// Emit builds an event and adds it to q's outbox.
func Emit(ctx context.Context, q sqldb.Querier, eventType, tenantID, userID string, data any) error {
	ev, err := NewEvent(eventType, tenantID, userID, data)
	if err != nil {
		return err
	}
	return Add(ctx, q, ev)
}

// Mark records that stream may hold unpublished events. control is the
// control database or a transaction of it.
func Mark(ctx context.Context, control sqldb.Querier, stream, databaseName string) error {
	_, err := control.Exec(ctx, `
		INSERT INTO outbox_pending (stream, database_name, version, marked_at)
		VALUES ($1, $2, 1, $3)
		ON CONFLICT (stream) DO UPDATE SET version = outbox_pending.version + 1`,
		stream, databaseName, sqldb.Now())
	if err != nil {
		return fmt.Errorf("mark stream %s pending: %w", stream, err)
	}
	return nil
}

// Notifier wakes relays in this process when events were committed, so that
// they publish at once instead of at their next poll. Relays in other
// processes find the work by polling.
type Notifier struct {
	ch chan struct{}
}

// NewNotifier returns a Notifier.
func NewNotifier() *Notifier { return &Notifier{ch: make(chan struct{}, 1)} }

// Notify signals that events were committed; it never blocks.
func (n *Notifier) Notify() {
	if n == nil {
		return
	}
	select {
	case n.ch <- struct{}{}:
	default:
	}
}

// C is what a relay waits on.
func (n *Notifier) C() <-chan struct{} { return n.ch }

// streamRow is a row of outbox_pending.
type streamRow struct {
	stream, databaseName string
	version              int64
}

// dueStreams lists pending streams no relay holds a live claim on, oldest
// mark first.
func dueStreams(ctx context.Context, q sqldb.Querier, now time.Time, limit int) ([]streamRow, error) {
	rows, err := q.Query(ctx, `
		SELECT stream, database_name, version FROM outbox_pending
		WHERE claim_expires_at IS NULL OR claim_expires_at < $1
		ORDER BY marked_at, stream `+sqldb.Limit(limit), now)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []streamRow
	for rows.Next() {
		var s streamRow
		if err := rows.Scan(&s.stream, &s.databaseName, &s.version); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// claim takes a stream for owner until expires, unless another relay holds
// a live claim. It returns the version the claim saw.
func claim(ctx context.Context, q sqldb.Querier, stream, owner string, now, expires time.Time) (int64, bool, error) {
	var version int64
	err := q.QueryRow(ctx, `
		UPDATE outbox_pending SET claimed_by = $2, claim_expires_at = $3
		WHERE stream = $1 AND (claim_expires_at IS NULL OR claim_expires_at < $4)
		RETURNING version`, stream, owner, expires, now).Scan(&version)
	if errors.Is(err, sqldb.ErrNoRows) {
		return 0, false, nil
	}
	return version, err == nil, err
}

// finish ends a claim on a drained stream: the row goes unless a mark came
// in since the claim, in which case it is released to be visited again.
// retryAt, when later than now, keeps other relays away until then.
func finish(ctx context.Context, q sqldb.Querier, stream, owner string, version int64, drained bool, retryAt time.Time) error {
	if drained {
		n, err := q.Exec(ctx, `DELETE FROM outbox_pending WHERE stream = $1 AND version = $2 AND claimed_by = $3`, stream, version, owner)
		if err != nil || n == 1 {
			return err
		}
	}
	var until any
	if !retryAt.IsZero() {
		until = retryAt
	}
	_, err := q.Exec(ctx, `
		UPDATE outbox_pending SET claimed_by = NULL, claim_expires_at = $3
		WHERE stream = $1 AND claimed_by = $2`, stream, owner, until)
	return err
}

// ensureMarked makes sure the next visit of stream starts after this call,
// for a writer whose transaction has just committed: an unclaimed row will
// be claimed, and read, later; a missing row or one a relay holds (and may
// have read before the commit) is marked anew, which the holder notices when
// it ends its claim.
func ensureMarked(ctx context.Context, control sqldb.Querier, stream, databaseName string) error {
	var claimed bool
	err := control.QueryRow(ctx, `SELECT claimed_by IS NOT NULL FROM outbox_pending WHERE stream = $1`, stream).Scan(&claimed)
	if err == nil && !claimed {
		return nil
	}
	if err != nil && !errors.Is(err, sqldb.ErrNoRows) {
		return fmt.Errorf("check stream %s: %w", stream, err)
	}
	return Mark(ctx, control, stream, databaseName)
}

// Streams is what services hold to record events: it marks streams pending
// and wakes this process's relays once a transaction with events commits.
type Streams struct {
	control sqldb.DB
	wake    *Notifier
	logger  *slog.Logger
}

// NewStreams returns Streams marking in control and waking through wake,
// which may be nil.
func NewStreams(control sqldb.DB, wake *Notifier, logger *slog.Logger) *Streams {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Streams{control: control, wake: wake, logger: logger}
}

// EmitPlatform adds an event to the control outbox within tx, a transaction
// of the control database, and marks the platform stream in the same
// transaction.
func (s *Streams) EmitPlatform(ctx context.Context, tx sqldb.Querier, eventType, tenantID, userID string, data any) error {
	return EmitPlatform(ctx, tx, eventType, tenantID, userID, data)
}

// EmitPlatform is Streams.EmitPlatform for writers that need no relay
// woken at once.
func EmitPlatform(ctx context.Context, tx sqldb.Querier, eventType, tenantID, userID string, data any) error {
	if err := Emit(ctx, tx, eventType, tenantID, userID, data); err != nil {
		return err
	}
	return Mark(ctx, tx, PlatformStream, "")
}

// TenantTx runs fn in a transaction of db, the database of tenantID, for a
// change that adds events to the tenant's outbox, and keeps the tenant's
// stream marked across the commit (see the package comment).
func (s *Streams) TenantTx(ctx context.Context, tenantID, databaseName string, db sqldb.DB, fn func(sqldb.Tx) error) error {
	if err := Mark(ctx, s.control, tenantID, databaseName); err != nil {
		return err
	}
	if err := db.InTx(ctx, fn); err != nil {
		return err
	}
	// The change is committed: failing now would have the client retry
	// it. Should the check fail, the periodic sweep finds the events.
	if err := ensureMarked(context.WithoutCancel(ctx), s.control, tenantID, databaseName); err != nil {
		s.logger.WarnContext(ctx, "tenant events committed but their stream may be unmarked until the next sweep",
			"tenant_id", tenantID, "error", err)
	}
	s.wake.Notify()
	return nil
}

// Committed wakes this process's relays after a transaction of the control
// database with events committed.
func (s *Streams) Committed() {
	if s != nil {
		s.wake.Notify()
	}
}

// Backlog reports the streams waiting for a relay and how long the oldest
// of them has waited: zero when none does.
func Backlog(ctx context.Context, control sqldb.Querier, now time.Time) (streams int64, oldest time.Duration, err error) {
	if err := control.QueryRow(ctx, `SELECT count(*) FROM outbox_pending`).Scan(&streams); err != nil {
		return 0, 0, err
	}
	var marked time.Time
	err = control.QueryRow(ctx, `SELECT `+control.Dialect().Time("marked_at")+` FROM outbox_pending ORDER BY marked_at `+sqldb.Limit(1)).
		Scan(sqldb.ScanTime(&marked))
	if errors.Is(err, sqldb.ErrNoRows) {
		return streams, 0, nil
	} else if err != nil {
		return 0, 0, err
	}
	return streams, max(now.Sub(marked), 0), nil
}
