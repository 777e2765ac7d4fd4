package sqlite

import (
	"context"
	"database/sql"
	"sync"
)

// maxStatements bounds the statements one pool keeps prepared. The
// application's queries are a fixed set well under it; should something
// build query texts without end, the ones past the bound run unprepared
// rather than growing the cache.
const maxStatements = 512

// statement runs a query: a prepared one ignores the text it is given, an
// unprepared one (a *sql.DB or *sql.Tx) runs it.
type statement interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// statements are the prepared statements of one pool, by query text.
// database/sql prepares each again on every connection that runs it and
// keeps it there, so one entry serves the whole pool.
type statements struct {
	db *sql.DB

	mu      sync.RWMutex
	byQuery map[string]*sql.Stmt
	// unprepared are queries a transaction ran before they were prepared:
	// preparing takes a connection of the pool, which may be the one the
	// transaction holds, so they are prepared once it has ended.
	unprepared map[string]bool
}

func newStatements(db *sql.DB) *statements {
	return &statements{db: db, byQuery: make(map[string]*sql.Stmt), unprepared: make(map[string]bool)}
}

// prepared returns query's prepared statement, preparing it on first use,
// or nil once the cache is full.
func (s *statements) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	s.mu.RLock()
	st, ok := s.byQuery[query]
	full := len(s.byQuery) >= maxStatements
	s.mu.RUnlock()
	if ok || full {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if prior, ok := s.byQuery[query]; ok {
		_ = st.Close()
		return prior, nil
	}
	if len(s.byQuery) >= maxStatements {
		_ = st.Close()
		return nil, nil
	}
	s.byQuery[query] = st
	return st, nil
}

// get returns what runs query on the pool.
func (s *statements) get(ctx context.Context, query string) (statement, error) {
	st, err := s.prepared(ctx, query)
	if err != nil || st == nil {
		return s.db, err
	}
	return preparedStmt{st}, nil
}

// inTx returns what runs query within tx, a transaction of this pool: the
// transaction reuses the statement its connection already has prepared, or
// runs the query as it is and leaves it to prepareDeferred.
func (s *statements) inTx(ctx context.Context, tx *sql.Tx, query string) statement {
	s.mu.RLock()
	st, ok := s.byQuery[query]
	s.mu.RUnlock()
	if ok {
		return preparedStmt{tx.StmtContext(ctx, st)}
	}
	s.mu.Lock()
	if len(s.byQuery)+len(s.unprepared) < maxStatements {
		s.unprepared[query] = true
	}
	s.mu.Unlock()
	return tx
}

// prepareDeferred prepares the queries transactions ran unprepared. Call it
// once a transaction has ended. A query that fails to prepare is dropped: it
// failed in its transaction too.
func (s *statements) prepareDeferred(ctx context.Context) {
	s.mu.RLock()
	none := len(s.unprepared) == 0
	s.mu.RUnlock()
	if none {
		return
	}
	s.mu.Lock()
	queries := make([]string, 0, len(s.unprepared))
	for q := range s.unprepared {
		queries = append(queries, q)
	}
	clear(s.unprepared)
	s.mu.Unlock()
	for _, q := range queries {
		_, _ = s.prepared(ctx, q)
	}
}

func (s *statements) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for q, st := range s.byQuery {
		_ = st.Close()
		delete(s.byQuery, q)
	}
}

type preparedStmt struct{ st *sql.Stmt }

func (p preparedStmt) ExecContext(ctx context.Context, _ string, args ...any) (sql.Result, error) {
	return p.st.ExecContext(ctx, args...)
}

func (p preparedStmt) QueryContext(ctx context.Context, _ string, args ...any) (*sql.Rows, error) {
	return p.st.QueryContext(ctx, args...)
}

func (p preparedStmt) QueryRowContext(ctx context.Context, _ string, args ...any) *sql.Row {
	return p.st.QueryRowContext(ctx, args...)
}
