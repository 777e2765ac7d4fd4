package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/tenantdb"
)

// Sink receives published events: Kafka in production, or the in-process
// Dispatcher. Publish returns nil only once every event is accepted; on an
// error the whole batch is offered again later.
type Sink interface {
	Publish(ctx context.Context, events []tenantry.Event) error
}

// RelayConfig tunes a Relay.
type RelayConfig struct {
	// Owner names this relay in claims; it must differ between processes.
	Owner string
	// Batch is how many events are read and published at a time.
	Batch int
	// Lease is how long a claim on a stream lasts without renewal; a relay
	// that dies mid-drain holds its streams no longer than this.
	Lease time.Duration
	// PollInterval is how often the relay looks for pending streams when
	// nothing in this process woke it.
	PollInterval time.Duration
	// RetryDelay keeps a stream whose events could not be published aside
	// for this long.
	RetryDelay time.Duration
	// PublishTimeout bounds one Publish call. It must be well under Lease:
	// a relay still waiting on its sink when its claim lapses could see
	// another relay publish the same stream beside it.
	PublishTimeout time.Duration
	// Visited, when set, is called with each stream the relay claims.
	Visited func(stream string)
	Logger  *slog.Logger
}

// Relay publishes the events of pending streams to a sink.
type Relay struct {
	control sqldb.DB
	dbs     *tenantdb.Manager
	sink    Sink
	wake    *Notifier
	cfg     RelayConfig
}

// NewRelay returns a Relay draining control's outbox and the tenant outboxes
// reached through dbs. wake may be nil.
func NewRelay(control sqldb.DB, dbs *tenantdb.Manager, sink Sink, wake *Notifier, cfg RelayConfig) *Relay {
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 250 * time.Millisecond
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = 5 * time.Second
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = cfg.Lease / 3
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Relay{control: control, dbs: dbs, sink: sink, wake: wake, cfg: cfg}
}

// Run publishes until ctx is done.
func (r *Relay) Run(ctx context.Context) {
	var wake <-chan struct{}
	if r.wake != nil {
		wake = r.wake.C()
	}
	for {
		busy, err := r.Pass(ctx)
		if err != nil && ctx.Err() == nil {
			r.cfg.Logger.WarnContext(ctx, "outbox relay", "error", err)
		}
		if busy && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-time.After(r.cfg.PollInterval):
		}
	}
}

// streamsPerPass bounds how many streams one pass looks at, so that a
// backlog of many tenants is worked through fairly, oldest mark first.
const streamsPerPass = 64

// Pass visits the pending streams once. It reports whether it found work, in
// which case another pass may find more.
func (r *Relay) Pass(ctx context.Context) (bool, error) {
	streams, err := dueStreams(ctx, r.control, sqldb.Now(), streamsPerPass)
	if err != nil {
		return false, fmt.Errorf("list pending streams: %w", err)
	}
	var errs []error
	for _, s := range streams {
		if ctx.Err() != nil {
			break
		}
		// A tenant whose database cannot serve is retried after the
		// delay; its outage was logged once, where it was detected.
		if err := r.drain(ctx, s); err != nil && !tenantdb.IsUnavailable(err) {
			errs = append(errs, fmt.Errorf("stream %s: %w", s.stream, err))
		}
	}
	return len(streams) > 0, errors.Join(errs...)
}

func (r *Relay) drain(ctx context.Context, s streamRow) error {
	now := sqldb.Now()
	version, ok, err := claim(ctx, r.control, s.stream, r.cfg.Owner, now, now.Add(r.cfg.Lease))
	if err != nil || !ok {
		return err
	}
	if r.cfg.Visited != nil {
		r.cfg.Visited(s.stream)
	}
	if s.stream == PlatformStream {
		err = r.drainControl(ctx)
	} else {
		err = r.drainTenant(ctx, s)
	}
	// The claim is ended even if the request that runs the relay is going
	// away, so that the stream is not held for a whole lease.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var retryAt time.Time
	if err != nil {
		retryAt = sqldb.Now().Add(r.cfg.RetryDelay)
	}
	if ferr := finish(fctx, r.control, s.stream, r.cfg.Owner, version, err == nil, retryAt); ferr != nil {
		err = errors.Join(err, fmt.Errorf("end claim: %w", ferr))
	}
	return err
}

// renew extends the claim on a stream between batches.
func (r *Relay) renew(ctx context.Context, stream string) error {
	_, err := r.control.Exec(ctx, `UPDATE outbox_pending SET claim_expires_at = $3 WHERE stream = $1 AND claimed_by = $2`,
		stream, r.cfg.Owner, sqldb.Now().Add(r.cfg.Lease))
	return err
}

func (r *Relay) publish(ctx context.Context, events []tenantry.Event) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	defer cancel()
	if err := r.sink.Publish(ctx, events); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return nil
}

// pendingRow is an unpublished outbox row.
type pendingRow struct {
	seq   int64
	event tenantry.Event
}

func readPending(ctx context.Context, q sqldb.Querier, limit int) ([]pendingRow, error) {
	rows, err := q.Query(ctx, `SELECT seq, payload FROM outbox WHERE published_at IS NULL ORDER BY seq `+sqldb.Limit(limit))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []pendingRow
	for rows.Next() {
		var p pendingRow
		var payload string
		if err := rows.Scan(&p.seq, &payload); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(payload), &p.event); err != nil {
			return nil, fmt.Errorf("outbox row %d: %w", p.seq, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// drainControl publishes the control outbox's platform events and forwards
// the ones that name a tenant into that tenant's outbox (audit events
// excepted).
func (r *Relay) drainControl(ctx context.Context) error {
	for {
		batch, err := readPending(ctx, r.control, r.cfg.Batch)
		if err != nil || len(batch) == 0 {
			return err
		}
		var platform []tenantry.Event
		forward := map[string][]tenantry.Event{}
		for _, p := range batch {
			// Audit events keep their tenant for routing but stay out of
			// tenants' streams, which would otherwise hold one per request.
			if p.event.TenantID == "" || p.event.EventType == tenantry.EventAuditLog {
				platform = append(platform, p.event)
			} else {
				forward[p.event.TenantID] = append(forward[p.event.TenantID], p.event)
			}
		}
		for tenantID, events := range forward {
			if err := r.forward(ctx, tenantID, events); err != nil {
				return err
			}
		}
		if len(platform) > 0 {
			if err := r.publish(ctx, platform); err != nil {
				return err
			}
		}
		err = r.control.InTx(ctx, func(tx sqldb.Tx) error {
			return markPublished(ctx, tx, r.control.Dialect(), batch, sqldb.Now(), 0)
		})
		if err != nil {
			return err
		}
		if err := r.renew(ctx, PlatformStream); err != nil {
			return err
		}
	}
}

// forward copies a tenant's events into its own outbox, marking the
// tenant's stream first so that the copies are never left unmarked.
func (r *Relay) forward(ctx context.Context, tenantID string, events []tenantry.Event) error {
	ref, err := tenantDatabase(ctx, r.control, tenantID)
	if errors.Is(err, sqldb.ErrNoRows) {
		// The tenant's provisioning was undone; its events describe
		// nothing that exists, and there is no stream to put them in.
		r.cfg.Logger.WarnContext(ctx, "dropping events of a tenant that does not exist", "tenant_id", tenantID, "events", len(events))
		return nil
	} else if err != nil {
		return err
	}
	if err := Mark(ctx, r.control, tenantID, ref.Name); err != nil {
		return err
	}
	lease, err := r.dbs.Acquire(ctx, ref)
	if err != nil {
		return err
	}
	defer lease.Release()
	err = lease.DB().InTx(ctx, func(tx sqldb.Tx) error {
		for _, ev := range events {
			payload, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			// Forwarding again after a crash must not duplicate.
			if _, err := tx.Exec(ctx, `
				INSERT INTO outbox (event_id, event_type, tenant_id, payload, created_at)
				VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING`,
				ev.EventID, ev.EventType, ev.TenantID, string(payload), ev.Timestamp); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Another process's relay may have drained the tenant's stream while
	// the copies were uncommitted.
	return ensureMarked(ctx, r.control, tenantID, ref.Name)
}

// tenantDatabase finds where a provisioned tenant's database is now: a move
// may have taken it to another server since its stream was marked. A tenant
// whose purge has begun has none: its events go with it.
func tenantDatabase(ctx context.Context, control sqldb.Querier, tenantID string) (tenantdb.Ref, error) {
	var ref tenantdb.Ref
	err := control.QueryRow(ctx, `SELECT COALESCE(server, ''), database_name FROM tenants
		WHERE id = $1 AND provisioned_at IS NOT NULL
		AND NOT EXISTS (SELECT 1 FROM tenant_purges p WHERE p.tenant_id = tenants.id)`, tenantID).
		Scan(&ref.Server, &ref.Name)
	return ref, err
}

// drainTenant publishes a tenant's unpublished events in order, giving each
// the next position of the tenant's stream.
func (r *Relay) drainTenant(ctx context.Context, s streamRow) error {
	ref, err := tenantDatabase(ctx, r.control, s.stream)
	if errors.Is(err, sqldb.ErrNoRows) {
		// The tenant is gone (purged, or its provisioning undone), and
		// its events with its database: there is nothing left to
		// publish, and the mark goes.
		r.cfg.Logger.WarnContext(ctx, "dropping the pending stream of a tenant that no longer exists", "tenant_id", s.stream)
		return nil
	} else if err != nil {
		return err
	}
	lease, err := r.dbs.Acquire(ctx, ref)
	if err != nil {
		return err
	}
	defer lease.Release()
	db := lease.DB()
	for {
		// The claim makes this relay the stream's only publisher, so the
		// batch can be read and published outside a transaction, which
		// keeps the tenant's writers unblocked meanwhile.
		batch, err := readPending(ctx, db, r.cfg.Batch)
		if err != nil || len(batch) == 0 {
			return err
		}
		events := make([]tenantry.Event, len(batch))
		for i, p := range batch {
			events[i] = p.event
		}
		if err := r.publish(ctx, events); err != nil {
			return err
		}
		err = db.InTx(ctx, func(tx sqldb.Tx) error {
			var last int64
			if err := tx.QueryRow(ctx, `SELECT value FROM counters WHERE name = 'event_position'`).Scan(&last); err != nil {
				return err
			}
			if err := markPublished(ctx, tx, db.Dialect(), batch, sqldb.Now(), last+1); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE counters SET value = $1 WHERE name = 'event_position'`, last+int64(len(batch)))
			return err
		})
		if err != nil {
			return err
		}
		if err := r.renew(ctx, s.stream); err != nil {
			return err
		}
	}
}

// markPublished records a published batch within tx. With firstPosition
// above zero, the rows get the stream positions that follow from it, in
// batch order. PostgreSQL takes the batch in one statement, which saves a
// round trip per event; SQLite runs in the process, where a statement per
// row costs no more than one long statement.
func markPublished(ctx context.Context, tx sqldb.Tx, dialect sqldb.Dialect, batch []pendingRow, now time.Time, firstPosition int64) error {
	if dialect == sqldb.Postgres {
		seqs := make([]int64, len(batch))
		for i, p := range batch {
			seqs[i] = p.seq
		}
		var position any
		if firstPosition > 0 {
			position = firstPosition
		}
		n, err := tx.Exec(ctx, `
			UPDATE outbox SET published_at = $1, position = $2::bigint + b.ord - 1
			FROM unnest($3::bigint[]) WITH ORDINALITY AS b(seq, ord)
			WHERE outbox.seq = b.seq`, now, position, seqs)
		if err == nil && n != int64(len(batch)) {
			err = fmt.Errorf("marked %d of %d published events", n, len(batch))
		}
		return err
	}
	for i, p := range batch {
		var position any
		if firstPosition > 0 {
			position = firstPosition + int64(i)
		}
		if _, err := tx.Exec(ctx, `UPDATE outbox SET published_at = $2, position = $3 WHERE seq = $1`, p.seq, now, position); err != nil {
			return err
		}
	}
	return nil
}
