// Package move moves a live tenant's database from one PostgreSQL server to
// another. The tenant keeps working throughout: its database is copied as a
// snapshot while writes go on, every write after the snapshot is followed
// through a log that triggers fill, and the copy catches up until it is a
// few changes behind. Only then are writes held back: a fence every write
// statement checks is raised (waiting for the writes in flight), the last
// changes are copied, the copy is checked, and the tenant's record in the
// control database is switched to the new server in one transaction. Every
// process finds a tenant's server in the same query that authorizes a
// request, so all of them follow the switch at once. Reads are served
// throughout, from the source until the switch. A write refused by the
// fence answers 503 with Retry-After.
//
// A move that fails, or whose mover dies (found by its heartbeat going
// stale), is undone: the fence and triggers are removed from the source and
// the copy is dropped, so the tenant stays on its old server, working.
// Blobs are keyed by tenant, not by server, and are not touched.
package move

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/postgres"
	"github.com/tenantry/tenantry/servers"
	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/tenantdb"
)

// Config tunes moves.
type Config struct {
	// Owner names the process that moves, in the move's record.
	Owner string
	// StaleAfter is how long a move's heartbeat may go unrenewed before
	// its mover is taken for dead and the move undone. Default 15 s.
	StaleAfter time.Duration
	// SwitchBelow is how few changes the copy may be behind for the
	// switch to start: the writes it holds back wait for that many to be
	// copied. Default 200.
	SwitchBelow int
	// Progress, when set, receives a line for each step.
	Progress func(format string, args ...any)
	Logger   *slog.Logger

	// hold, when set, is called with the fence raised, before the last
	// changes are copied: tests use it to look at a tenant mid-switch.
	hold func(ctx context.Context)
}

// Engine is what a move needs of the tenant database engine: opening a
// database as the PostgreSQL engine's own type.
type Engine interface {
	tenantdb.Engine
	OpenDB(ctx context.Context, ref tenantdb.Ref, maxConns int) (*postgres.DB, error)
}

// Mover moves tenants' databases between the servers of one deployment.
type Mover struct {
	control sqldb.DB
	engine  Engine
	servers *servers.Registry
	dbs     *tenantdb.Manager
	cfg     Config
}

// New returns a Mover. dbs, when not nil, is this process's tenant database
// manager, which forgets the source once the tenant has left it.
func New(control sqldb.DB, engine Engine, registry *servers.Registry, dbs *tenantdb.Manager, cfg Config) *Mover {
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = 15 * time.Second
	}
	if cfg.SwitchBelow <= 0 {
		cfg.SwitchBelow = 200
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Progress == nil {
		cfg.Progress = func(string, ...any) {}
	}
	return &Mover{control: control, engine: engine, servers: registry, dbs: dbs, cfg: cfg}
}

// Result is what a completed move did.
type Result struct {
	From, To string
	// Took is the whole move; WritesHeld the time writes were refused.
	Took, WritesHeld time.Duration
	// Changes is how many logged changes were copied after the snapshot.
	Changes int
}

// moveConns is how many connections the mover holds on each side.
const moveConns = 4

// Move moves the tenant's database to the server named to (servers.Default
// for the default one).
func (m *Mover) Move(ctx context.Context, tenantID, to string) (*Result, error) {
	started := time.Now()
	if to == servers.Default {
		to = ""
	}
	r := &record{tenantID: tenantID, to: to}
	err := m.control.QueryRow(ctx, `
		SELECT COALESCE(server, ''), database_name FROM tenants WHERE id = $1 AND provisioned_at IS NOT NULL`, tenantID).
		Scan(&r.from, &r.database)
	if errors.Is(err, sqldb.ErrNoRows) {
		return nil, tenantry.Errorf(tenantry.ENotFound, "Tenant not found")
	} else if err != nil {
		return nil, err
	}
	if r.from == r.to {
		return nil, tenantry.Errorf(tenantry.EConflict, "The tenant's database is already on %s", serverName(r.to))
	}
	if r.to != "" {
		s, err := m.servers.Get(ctx, r.to)
		if err != nil {
			return nil, err
		}
		if s.State != servers.Active {
			return nil, tenantry.Errorf(tenantry.EConflict, "Server %s is draining: it takes no tenant", r.to)
		}
	}
	if _, err := m.GiveUpStale(ctx); err != nil {
		return nil, err
	}
	if err := begin(ctx, m.control, r, m.cfg.Owner, sqldb.Now()); err != nil {
		return nil, err
	}
	m.cfg.Progress("moving tenant %s (%s) from %s to %s", tenantID, r.database, serverName(r.from), serverName(r.to))

	work, stop := context.WithCancel(ctx)
	defer stop()
	go m.beat(work, stop, r.id)

	res, err := m.run(work, r)
	stop()
	if err != nil {
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		m.undo(cleanup, r, err.Error())
		return nil, fmt.Errorf("move tenant %s: %w (the tenant stays on %s)", tenantID, err, serverName(r.from))
	}
	m.release(ctx, tenantdb.Ref{Server: r.from, Name: r.database})
	res.Took = time.Since(started)
	m.cfg.Progress("moved in %s; writes were held back for %s", res.Took.Round(time.Millisecond), res.WritesHeld.Round(time.Millisecond))
	return res, nil
}

// run does the move up to the switch.
func (m *Mover) run(ctx context.Context, r *record) (*Result, error) {
	from, to := tenantdb.Ref{Server: r.from, Name: r.database}, tenantdb.Ref{Server: r.to, Name: r.database}
	source, err := m.engine.OpenDB(ctx, from, moveConns)
	if err != nil {
		return nil, fmt.Errorf("open the source: %w", err)
	}
	defer source.Close()
	if err := tenantdb.Migrate(ctx, m.engine, source); err != nil {
		return nil, err
	}
	// A database of that name on the target is either the source itself,
	// when two server names reach one PostgreSQL server, or the remains of
	// a move whose undoing failed: neither is for a move to drop.
	if err := m.engine.Create(ctx, to); errors.Is(err, tenantdb.ErrExists) {
		r.keepTarget = true
		return nil, fmt.Errorf("a database named %s already exists on %s: is it the same PostgreSQL server? (drop it there by hand if it is a copy left behind)",
			r.database, serverName(r.to))
	} else if err != nil {
		return nil, fmt.Errorf("create the copy: %w", err)
	}
	target, err := m.engine.OpenDB(ctx, to, moveConns)
	if err != nil {
		return nil, fmt.Errorf("open the copy: %w", err)
	}
	defer target.Close()
	if err := tenantdb.Migrate(ctx, m.engine, target); err != nil {
		return nil, err
	}
	ts, err := tables(ctx, source.Pool())
	if err != nil {
		return nil, err
	}
	if err := follow(ctx, source.Pool(), ts); err != nil {
		return nil, err
	}
	m.cfg.Progress("copying %d tables", len(ts))
	if err := copyAll(ctx, source.Pool(), target.Pool(), ts); err != nil {
		return nil, err
	}
	m.cfg.Progress("copied; catching up with the writes made meanwhile")
	res := &Result{From: serverName(r.from), To: serverName(r.to)}
	for {
		n, err := catchUp(ctx, source.Pool(), target.Pool(), ts, catchUpBatch)
		if err != nil {
			return nil, err
		}
		res.Changes += n
		if n < m.cfg.SwitchBelow {
			break
		}
	}
	if ok, err := advance(ctx, m.control, r.id, stateCopying, stateSwitching, sqldb.Now()); err != nil {
		return nil, err
	} else if !ok {
		return nil, errors.New("the move was given up while it copied")
	}

	m.cfg.Progress("holding writes back for the switch")
	held := time.Now()
	if err := raiseFence(ctx, source.Pool()); err != nil {
		return nil, err
	}
	if m.cfg.hold != nil {
		m.cfg.hold(ctx)
	}
	for {
		n, err := catchUp(ctx, source.Pool(), target.Pool(), ts, catchUpBatch)
		if err != nil {
			return nil, err
		}
		res.Changes += n
		if n == 0 {
			break
		}
	}
	if err := syncSequences(ctx, source.Pool(), target.Pool()); err != nil {
		return nil, err
	}
	if err := sameCounts(ctx, source.Pool(), target.Pool(), ts); err != nil {
		return nil, err
	}
	if err := switchOver(ctx, m.control, r, sqldb.Now()); err != nil {
		return nil, err
	}
	res.WritesHeld = time.Since(held)
	m.cfg.Progress("switched to %s", serverName(r.to))
	return res, nil
}

// catchUpBatch is how many logged changes one catching-up step copies.
const catchUpBatch = 5000

// release lets the source go once the tenant has left it: this process
// forgets it, and the database is dropped. A request that was reading it
// when it goes fails once, and finds the tenant on its new server when
// retried. Failing to drop it leaves a database nobody uses, which is not
// worth failing a completed move for.
func (m *Mover) release(ctx context.Context, from tenantdb.Ref) {
	if m.dbs != nil {
		if err := m.dbs.Forget(ctx, from); err != nil {
			m.cfg.Logger.Warn("forgetting a moved tenant's old database", "database", from.String(), "error", err)
		}
	}
	if err := m.engine.Drop(ctx, from); err != nil {
		m.cfg.Logger.Warn("dropping a moved tenant's old database", "database", from.String(), "error", err)
		return
	}
	m.cfg.Progress("dropped the database on %s", serverName(from.Server))
}

// undo gives up a move: the source is as it was before it, the copy is
// dropped, and the record says why.
func (m *Mover) undo(ctx context.Context, r *record, cause string) {
	// A switch whose commit was not acknowledged may still have happened:
	// then the copy is the tenant's database, and only the source goes.
	var now string
	if err := m.control.QueryRow(ctx, `SELECT COALESCE(server, '') FROM tenants WHERE id = $1`, r.tenantID).Scan(&now); err == nil && now == r.to {
		m.cfg.Logger.Warn("a move thought failed had switched; keeping the copy", "tenant_id", r.tenantID)
		m.release(ctx, tenantdb.Ref{Server: r.from, Name: r.database})
		return
	}
	if err := fail(ctx, m.control, r.id, cause, sqldb.Now()); err != nil {
		m.cfg.Logger.Error("recording a failed move", "tenant_id", r.tenantID, "error", err)
	}
	from, to := tenantdb.Ref{Server: r.from, Name: r.database}, tenantdb.Ref{Server: r.to, Name: r.database}
	if source, err := m.engine.OpenDB(ctx, from, 1); err != nil {
		m.cfg.Logger.Error("undoing a move: opening the source", "tenant_id", r.tenantID, "error", err)
	} else {
		if err := unfollow(ctx, source.Pool()); err != nil {
			m.cfg.Logger.Error("undoing a move: clearing the source", "tenant_id", r.tenantID, "error", err)
		}
		source.Close()
	}
	if !r.keepTarget {
		if err := m.engine.Drop(ctx, to); err != nil {
			m.cfg.Logger.Error("undoing a move: dropping the copy", "tenant_id", r.tenantID, "error", err)
		}
	}
	m.cfg.Logger.Warn("tenant move undone; the tenant stays where it was", "tenant_id", r.tenantID,
		"from", serverName(r.from), "to", serverName(r.to), "cause", cause)
}

// GiveUpStale undoes the moves whose mover has gone silent, and returns
// how many. Workers run it periodically, and every move first.
func (m *Mover) GiveUpStale(ctx context.Context) (int, error) {
	list, err := stale(ctx, m.control, sqldb.Now().Add(-m.cfg.StaleAfter))
	if err != nil {
		return 0, err
	}
	for i := range list {
		m.undo(ctx, &list[i], "the mover stopped renewing its heartbeat")
	}
	return len(list), nil
}

func serverName(s string) string {
	if s == "" {
		return "the default server"
	}
	return "server " + s
}
