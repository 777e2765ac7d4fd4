package move

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Names of what a move adds to the source database for its duration, and
// removes when it ends one way or the other.
const (
	logTable      = "tenantry_move_log"
	fenceTable    = "tenantry_move_fence"
	captureFunc   = "tenantry_move_capture"
	fenceFunc     = "tenantry_move_check_fence"
	captureTrig   = "tenantry_move_capture"
	fenceTrig     = "tenantry_move_fence"
	fenceSQLState = "25006" // read_only_sql_transaction
)

// table is one table of a tenant database, as the move copies it.
type table struct {
	name    string
	key     string // the primary key's one column
	keyType string
	columns []string
}

// quoted returns the table's name quoted as an identifier.
func (t table) quoted() string { return pgx.Identifier{t.name}.Sanitize() }

func (t table) columnList() string {
	q := make([]string, len(t.columns))
	for i, c := range t.columns {
		q[i] = pgx.Identifier{c}.Sanitize()
	}
	return strings.Join(q, ", ")
}

// tables lists the tenant schema's tables in an order that copies a table
// after the tables it references: what the move copies. The schema's own
// bookkeeping and the move's tables are left out; a table without a
// one-column primary key cannot be followed and stops the move.
func tables(ctx context.Context, db *pgxpool.Pool) ([]table, error) {
	rows, err := db.Query(ctx, `
		SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), i.indnatts
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
		LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
		WHERE n.nspname = 'public' AND c.relkind = 'r'
		  AND c.relname NOT IN ('goose_db_version', $1, $2)
		ORDER BY c.relname`, logTable, fenceTable)
	if err != nil {
		return nil, err
	}
	byName := map[string]*table{}
	var names []string
	for rows.Next() {
		var t table
		var key, keyType *string
		var keyColumns *int
		if err := rows.Scan(&t.name, &key, &keyType, &keyColumns); err != nil {
			rows.Close()
			return nil, err
		}
		if key == nil || keyColumns == nil || *keyColumns != 1 {
			rows.Close()
			return nil, fmt.Errorf("table %s has no one-column primary key: a move cannot follow its changes", t.name)
		}
		t.key, t.keyType = *key, *keyType
		byName[t.name] = &t
		names = append(names, t.name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, name := range names {
		cols, err := db.Query(ctx, `
			SELECT attname FROM pg_attribute
			WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped
			ORDER BY attnum`, pgx.Identifier{name}.Sanitize())
		if err != nil {
			return nil, err
		}
		byName[name].columns, err = pgx.CollectRows(cols, pgx.RowTo[string])
		if err != nil {
			return nil, err
		}
	}
	refs, err := db.Query(ctx, `
		SELECT DISTINCT c.conrelid::regclass::text, c.confrelid::regclass::text
		FROM pg_constraint c WHERE c.contype = 'f' AND c.conrelid <> c.confrelid`)
	if err != nil {
		return nil, err
	}
	parents := map[string][]string{}
	for refs.Next() {
		var child, parent string
		if err := refs.Scan(&child, &parent); err != nil {
			refs.Close()
			return nil, err
		}
		parents[strings.Trim(child, `"`)] = append(parents[strings.Trim(child, `"`)], strings.Trim(parent, `"`))
	}
	refs.Close()
	if err := refs.Err(); err != nil {
		return nil, err
	}
	return parentsFirst(names, byName, parents)
}

// parentsFirst orders tables so that each comes after those it references.
func parentsFirst(names []string, byName map[string]*table, parents map[string][]string) ([]table, error) {
	var out []table
	state := map[string]int{} // 1: being visited, 2: done
	var visit func(name string) error
	visit = func(name string) error {
		switch state[name] {
		case 1:
			return fmt.Errorf("tables reference each other in a cycle through %s", name)
		case 2:
			return nil
		}
		state[name] = 1
		for _, p := range parents[name] {
			if _, ours := byName[p]; ours {
				if err := visit(p); err != nil {
					return err
				}
			}
		}
		state[name] = 2
		out = append(out, *byName[name])
		return nil
	}
	for _, name := range names {
		if err := visit(name); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// follow installs on the source what lets the move follow it while it stays
// live: a log of the keys of the rows each write touches, filled by row
// triggers, and a fence every write statement checks. Each table gets its
// triggers in a transaction of its own, which waits for the writes in flight
// on that table and makes every later one write the log: the copy starts
// after the last table is followed, so a write the log misses is one the
// copy sees.
func follow(ctx context.Context, source *pgxpool.Pool, ts []table) error {
	setup := []string{
		`CREATE TABLE IF NOT EXISTS ` + logTable + ` (seq BIGSERIAL PRIMARY KEY, tbl TEXT NOT NULL, key TEXT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS ` + fenceTable + ` (id INTEGER PRIMARY KEY CHECK (id = 1), fenced_at TIMESTAMPTZ)`,
		`INSERT INTO ` + fenceTable + ` (id) VALUES (1) ON CONFLICT (id) DO NOTHING`,
		// The key of the row written, and for an update that changes it,
		// the old one too.
		`CREATE OR REPLACE FUNCTION ` + captureFunc + `() RETURNS trigger LANGUAGE plpgsql AS $f$
		DECLARE
			new_key text;
			old_key text;
		BEGIN
			IF TG_OP <> 'DELETE' THEN
				EXECUTE format('SELECT ($1).%I::text', TG_ARGV[0]) USING NEW INTO new_key;
				INSERT INTO ` + logTable + ` (tbl, key) VALUES (TG_TABLE_NAME, new_key);
			END IF;
			IF TG_OP <> 'INSERT' THEN
				EXECUTE format('SELECT ($1).%I::text', TG_ARGV[0]) USING OLD INTO old_key;
				IF old_key IS DISTINCT FROM new_key THEN
					INSERT INTO ` + logTable + ` (tbl, key) VALUES (TG_TABLE_NAME, old_key);
				END IF;
			END IF;
			RETURN NULL;
		END $f$`,
		// A write statement takes a share lock on the fence row for the
		// rest of its transaction. Raising the fence waits for those
		// transactions; a write that comes after finds it raised. A write
		// that comes while the fence is being raised does not queue
		// behind it (it could hold a lock an earlier writer waits for,
		// and deadlock): it is refused at once, as after.
		`CREATE OR REPLACE FUNCTION ` + fenceFunc + `() RETURNS trigger LANGUAGE plpgsql AS $f$
		BEGIN
			PERFORM 1 FROM ` + fenceTable + ` WHERE id = 1 AND fenced_at IS NULL FOR SHARE NOWAIT;
			IF NOT FOUND THEN
				RAISE EXCEPTION 'this tenant is moving to another server: writes wait for the switch'
					USING ERRCODE = '` + fenceSQLState + `';
			END IF;
			RETURN NULL;
		EXCEPTION WHEN lock_not_available THEN
			RAISE EXCEPTION 'this tenant is moving to another server: writes wait for the switch'
				USING ERRCODE = '` + fenceSQLState + `';
		END $f$`,
	}
	if err := inTx(ctx, source, setup); err != nil {
		return fmt.Errorf("prepare the source: %w", err)
	}
	for _, t := range ts {
		triggers := []string{
			`DROP TRIGGER IF EXISTS ` + fenceTrig + ` ON ` + t.quoted(),
			`CREATE TRIGGER ` + fenceTrig + ` BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON ` + t.quoted() +
				` FOR EACH STATEMENT EXECUTE FUNCTION ` + fenceFunc + `()`,
			`DROP TRIGGER IF EXISTS ` + captureTrig + ` ON ` + t.quoted(),
			`CREATE TRIGGER ` + captureTrig + ` AFTER INSERT OR UPDATE OR DELETE ON ` + t.quoted() +
				` FOR EACH ROW EXECUTE FUNCTION ` + captureFunc + `(` + quoteLiteral(t.key) + `)`,
		}
		if err := ddlUnderLoad(ctx, source, triggers); err != nil {
			return fmt.Errorf("follow table %s: %w", t.name, err)
		}
	}
	return nil
}

// A trigger is created under a lock that waits for the table's writers and
// holds back those that come after; writers waiting on each other through
// that queue can make PostgreSQL break a deadlock by failing the DDL. The
// lock is asked for with a short timeout and asked again, so that the
// application's transactions are never the ones refused.
const (
	ddlLockTimeout = "2s"
	ddlAttempts    = 20
)

func ddlUnderLoad(ctx context.Context, db *pgxpool.Pool, statements []string) error {
	wait := 20 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := inTx(ctx, db, append([]string{`SET LOCAL lock_timeout = '` + ddlLockTimeout + `'`}, statements...))
		var pgErr *pgconn.PgError
		if err == nil || attempt == ddlAttempts || !errors.As(err, &pgErr) ||
			(pgErr.Code != pgerrcode.DeadlockDetected && pgErr.Code != pgerrcode.LockNotAvailable) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait + rand.N(wait)):
		}
		wait = min(2*wait, time.Second)
	}
}

// inTx runs statements in one transaction.
func inTx(ctx context.Context, db *pgxpool.Pool, statements []string) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	for _, s := range statements {
		if _, err := tx.Exec(ctx, s); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// unfollow removes from the source everything follow installed, fence
// included: the source is as it was before the move.
func unfollow(ctx context.Context, source *pgxpool.Pool) error {
	rows, err := source.Query(ctx, `
		SELECT DISTINCT c.relname FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
		WHERE g.tgname IN ($1, $2)`, captureTrig, fenceTrig)
	if err != nil {
		return err
	}
	followed, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, name := range followed {
		q := pgx.Identifier{name}.Sanitize()
		if err := ddlUnderLoad(ctx, source, []string{
			`DROP TRIGGER IF EXISTS ` + fenceTrig + ` ON ` + q,
			`DROP TRIGGER IF EXISTS ` + captureTrig + ` ON ` + q,
		}); err != nil {
			return err
		}
	}
	return inTx(ctx, source, []string{
		`DROP FUNCTION IF EXISTS ` + captureFunc + `()`,
		`DROP FUNCTION IF EXISTS ` + fenceFunc + `()`,
		`DROP TABLE IF EXISTS ` + logTable,
		`DROP TABLE IF EXISTS ` + fenceTable,
	})
}

// raiseFence makes the source refuse every write from now on, after the
// writes in flight have committed or failed.
func raiseFence(ctx context.Context, source *pgxpool.Pool) error {
	_, err := source.Exec(ctx, `UPDATE `+fenceTable+` SET fenced_at = now() WHERE id = 1`)
	return err
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
