package tenantdb

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tenantry/tenantry/migrate"
	"github.com/tenantry/tenantry/sqldb"
)

// Config bounds the resources the Manager may hold.
type Config struct {
	// MaxConns is the cap on connections (PostgreSQL) or open database
	// files (SQLite) this process holds for the tenant databases of one
	// server, each server having its own.
	MaxConns int
	// ConnsPerDB is the most connections one tenant database may hold.
	// Each open database reserves this many slots of its server's
	// MaxConns.
	ConnsPerDB int
	// IdleTimeout closes a database nobody has used for this long. Zero
	// keeps idle databases open until the cap needs their slots.
	IdleTimeout time.Duration
	// RetryAfter is how long a database that failed is left alone before
	// it is tried again; zero means the package's RetryAfter.
	RetryAfter time.Duration
	Logger     *slog.Logger
}

// Manager opens tenant databases on demand, migrates each to the latest tenant
// schema the first time this process opens it, and keeps them open for reuse
// under a cap per server. When a server's cap is reached, its least recently
// used idle database is closed; when every database open on it is in use,
// Acquire waits.
type Manager struct {
	engine Engine
	cfg    Config

	mu       sync.Mutex
	entries  map[Ref]*entry
	idle     *list.List     // of *entry with refs == 0; front is most recent
	reserved map[string]int // per server: ConnsPerDB over entries and closing ones
	waiters  int
	changed  chan struct{} // closed and replaced when slots may have freed
	migrated map[Ref]bool
	outages  map[Ref]*outage
	closed   bool

	stop chan struct{}
	done chan struct{}
}

type entry struct {
	ref      Ref
	db       sqldb.DB
	err      error
	refs     int
	lastUsed time.Time
	elem     *list.Element
	ready    chan struct{}
	// broken marks a database that failed to serve: it is handed out no
	// more, and closed when its last lease ends.
	broken bool
	// transient marks a database opened by AcquireTransient that no
	// ordinary lease has taken since: it is closed when its last lease
	// ends.
	transient bool
}

// Lease is a tenant database held open for the duration of some work.
type Lease struct {
	m    *Manager
	e    *entry
	once sync.Once
}

// DB returns the leased database. It must not be used after Release.
func (l *Lease) DB() sqldb.DB { return l.e.db }

// Release returns the database to the manager; it is safe to call twice.
func (l *Lease) Release() { l.once.Do(func() { l.m.release(l.e) }) }

// Stats describes what the manager holds at one moment.
type Stats struct {
	// Open is the number of open tenant databases, leased or idle.
	Open int
	// Leased is how many of them are in use right now.
	Leased int
	// Reserved is the number of connection slots held by open or closing
	// databases, on all servers; on each server it never exceeds Cap.
	Reserved int
	// Connections is the number of connections those databases hold now.
	Connections int
	// Cap is the cap of each server.
	Cap int
}

// NewManager returns a Manager for engine's databases. Close it to release
// every database and stop its idle sweeper.
func NewManager(engine Engine, cfg Config) (*Manager, error) {
	if cfg.ConnsPerDB < 1 {
		cfg.ConnsPerDB = 1
	}
	if cfg.MaxConns < cfg.ConnsPerDB {
		return nil, fmt.Errorf("tenant database cap %d is below the %d connections one database needs", cfg.MaxConns, cfg.ConnsPerDB)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = RetryAfter
	}
	m := &Manager{
		engine:   engine,
		cfg:      cfg,
		entries:  make(map[Ref]*entry),
		idle:     list.New(),
		reserved: make(map[string]int),
		changed:  make(chan struct{}),
		migrated: make(map[Ref]bool),
		outages:  make(map[Ref]*outage),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go m.sweep()
	return m, nil
}

// Engine returns the engine whose databases the manager opens.
func (m *Manager) Engine() Engine { return m.engine }

// Acquire returns the named tenant database, opening and migrating it if this
// process does not hold it open. The caller must Release the lease. A
// database that cannot serve, now or when it last failed less than
// RetryAfter ago, is refused at once with an error that IsUnavailable
// recognises and that clients see as 503 SERVICE_UNAVAILABLE.
func (m *Manager) Acquire(ctx context.Context, ref Ref) (*Lease, error) {
	return m.acquire(ctx, ref, false)
}

// AcquireTransient is Acquire for work that passes over every tenant in
// turn, such as storage reconciliation or event pruning: a database it had
// to open is closed again when its lease is released, unless an ordinary
// lease has taken it meanwhile. A pass over all tenants then leaves open
// only the databases that were open before or that requests use, rather
// than every tenant's, each holding its connections and page cache until
// the idle timeout.
func (m *Manager) AcquireTransient(ctx context.Context, ref Ref) (*Lease, error) {
	return m.acquire(ctx, ref, true)
}

func (m *Manager) acquire(ctx context.Context, ref Ref, transient bool) (*Lease, error) {
	m.mu.Lock()
	for {
		if m.closed {
			m.mu.Unlock()
			return nil, errors.New("tenant database manager is closed")
		}
		if o, ok := m.outages[ref]; ok {
			if wait := time.Until(o.retryAt); wait > 0 {
				m.mu.Unlock()
				return nil, unavailable(o.cause, wait)
			}
		}
		if e, ok := m.entries[ref]; ok {
			if e.broken {
				m.mu.Unlock()
				return nil, unavailable(errors.New("the database failed to serve"), m.cfg.RetryAfter)
			}
			e.refs++
			if !transient {
				e.transient = false
			}
			if e.elem != nil {
				m.idle.Remove(e.elem)
				e.elem = nil
			}
			m.mu.Unlock()
			return m.awaitOpen(ctx, e)
		}
		if m.reserved[ref.Server]+m.cfg.ConnsPerDB <= m.cfg.MaxConns {
			break
		}
		if e := m.leastRecentIdleLocked(ref.Server); e != nil {
			m.evictLocked(e)
			continue
		}
		if err := m.waitLocked(ctx); err != nil {
			m.mu.Unlock()
			return nil, fmt.Errorf("waiting for a tenant database slot: %w", err)
		}
	}
	e := &entry{ref: ref, refs: 1, ready: make(chan struct{}), transient: transient}
	m.entries[ref] = e
	m.reserved[ref.Server] += m.cfg.ConnsPerDB
	needMigrate := !m.migrated[ref]
	m.mu.Unlock()

	// Other requests may be waiting on this open, so it must not fail just
	// because the request that happened to start it went away.
	openCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	db, err := m.open(openCtx, ref, needMigrate)
	cancel()

	m.mu.Lock()
	if err != nil {
		e.err = unavailable(err, m.cfg.RetryAfter)
		m.outageLocked(ref, err)
		delete(m.entries, ref)
		m.reserved[ref.Server] -= m.cfg.ConnsPerDB
		m.broadcastLocked()
	} else {
		e.db = &guarded{DB: db, m: m, e: e}
		if needMigrate {
			m.migrated[ref] = true
		}
		if _, ok := m.outages[ref]; ok {
			delete(m.outages, ref)
			m.cfg.Logger.Info("tenant database available again", "database", ref.String())
		}
	}
	close(e.ready)
	m.mu.Unlock()
	return m.awaitOpen(ctx, e)
}

// leastRecentIdleLocked returns the idle database of server used least
// recently, or nil when it has none.
func (m *Manager) leastRecentIdleLocked(server string) *entry {
	for el := m.idle.Back(); el != nil; el = el.Prev() {
		if e := el.Value.(*entry); e.ref.Server == server {
			return e
		}
	}
	return nil
}

func (m *Manager) awaitOpen(ctx context.Context, e *entry) (*Lease, error) {
	select {
	case <-e.ready:
	case <-ctx.Done():
		m.release(e)
		return nil, ctx.Err()
	}
	if e.err != nil {
		m.release(e)
		return nil, e.err
	}
	return &Lease{m: m, e: e}, nil
}

func (m *Manager) open(ctx context.Context, ref Ref, needMigrate bool) (sqldb.DB, error) {
	db, err := m.engine.Open(ctx, ref, m.cfg.ConnsPerDB)
	if err != nil {
		return nil, err
	}
	if needMigrate {
		if err := Migrate(ctx, m.engine, db); err != nil {
			_ = db.Close()
			return nil, err
		}
	}
	return db, nil
}

// Migrate brings db to the latest tenant schema of engine, under the
// database's schema lock: other processes may be opening the same tenant.
func Migrate(ctx context.Context, engine Engine, db sqldb.DB) error {
	mig, err := Migrator(engine, db)
	if err != nil {
		return err
	}
	if _, err := mig.Up(ctx); err != nil {
		return fmt.Errorf("migrate tenant database: %w", err)
	}
	return nil
}

// outageLocked records that the named database failed, logging it only
// when it starts an outage: a tenant whose database is down would otherwise
// fill the log with one line per request.
func (m *Manager) outageLocked(ref Ref, cause error) {
	// Whatever brought it back (a restore, a move) may have left another
	// schema version: check it again when it next opens.
	delete(m.migrated, ref)
	if _, ok := m.outages[ref]; !ok {
		m.cfg.Logger.Error("tenant database unavailable", "database", ref.String(), "error", cause,
			"retry_after", m.cfg.RetryAfter.String())
	}
	m.outages[ref] = &outage{cause: cause, retryAt: time.Now().Add(m.cfg.RetryAfter)}
}

// broke marks an open database that failed to serve a leased request.
func (m *Manager) broke(e *entry, cause error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e.broken || m.entries[e.ref] != e {
		return
	}
	e.broken = true
	m.outageLocked(e.ref, cause)
}

// Migrator returns the migrator of db, a tenant database of engine.
func Migrator(engine Engine, db sqldb.DB) (*migrate.Migrator, error) {
	return migrate.NewFiles(db, "tenant database", engine.Migrations())
}

func (m *Manager) release(e *entry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e.refs--
	e.lastUsed = time.Now()
	if e.refs == 0 && e.err == nil && m.entries[e.ref] == e {
		// A transient database whose open a cancelled lease left
		// running is not closed here; it idles out like any other.
		if m.closed || e.broken || (e.transient && e.db != nil) {
			m.evictLocked(e)
			return
		}
		e.elem = m.idle.PushFront(e)
		m.broadcastLocked()
	}
}

// evictLocked closes an idle entry. Its slots stay reserved until the close
// has finished, so the cap also covers connections still being torn down.
func (m *Manager) evictLocked(e *entry) {
	delete(m.entries, e.ref)
	if e.elem != nil {
		m.idle.Remove(e.elem)
		e.elem = nil
	}
	m.mu.Unlock()
	if err := e.db.Close(); err != nil {
		m.cfg.Logger.Warn("closing tenant database", "database", e.ref.String(), "error", err)
	}
	m.mu.Lock()
	m.reserved[e.ref.Server] -= m.cfg.ConnsPerDB
	m.broadcastLocked()
}

func (m *Manager) waitLocked(ctx context.Context) error {
	ch := m.changed
	m.waiters++
	m.mu.Unlock()
	var err error
	select {
	case <-ch:
	case <-ctx.Done():
		err = ctx.Err()
	}
	m.mu.Lock()
	m.waiters--
	return err
}

func (m *Manager) broadcastLocked() {
	if m.waiters > 0 {
		close(m.changed)
		m.changed = make(chan struct{})
	}
}

// Forget closes the named database if it is open and forgets that it was
// migrated, waiting for current leases to end. It is called before the
// database is dropped.
func (m *Manager) Forget(ctx context.Context, ref Ref) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.migrated, ref)
	delete(m.outages, ref)
	for {
		e, ok := m.entries[ref]
		if !ok {
			return nil
		}
		if e.refs == 0 {
			m.evictLocked(e)
			return nil
		}
		if err := m.waitLocked(ctx); err != nil {
			return err
		}
	}
}

// Stats reports what the manager holds now.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Stats{Open: len(m.entries), Cap: m.cfg.MaxConns}
	for _, n := range m.reserved {
		s.Reserved += n
	}
	for _, e := range m.entries {
		if e.refs > 0 {
			s.Leased++
		}
		if e.db != nil {
			s.Connections += e.db.OpenConnections()
		}
	}
	return s
}

func (m *Manager) sweep() {
	defer close(m.done)
	if m.cfg.IdleTimeout <= 0 {
		<-m.stop
		return
	}
	t := time.NewTicker(max(m.cfg.IdleTimeout/2, time.Second))
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.closeIdleSince(time.Now().Add(-m.cfg.IdleTimeout))
		}
	}
}

func (m *Manager) closeIdleSince(cutoff time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for back := m.idle.Back(); back != nil; back = m.idle.Back() {
		e := back.Value.(*entry)
		if e.lastUsed.After(cutoff) {
			return
		}
		m.evictLocked(e)
	}
}

// Close closes every idle database now and each leased one when its lease
// ends, and stops the idle sweeper.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	close(m.stop)
	for back := m.idle.Back(); back != nil; back = m.idle.Back() {
		m.evictLocked(back.Value.(*entry))
	}
	m.broadcastLocked()
	m.mu.Unlock()
	<-m.done
	return nil
}
