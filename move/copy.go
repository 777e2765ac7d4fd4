package move

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// copyAll copies every table from source to target as one snapshot of the
// source, in PostgreSQL's binary COPY format streamed from one server to
// the other. The target's tables are emptied first: its migrations seed
// some rows. Changes logged before the snapshot are in it, and replaying
// them is harmless, so catching up starts from the start of the log.
func copyAll(ctx context.Context, source, target *pgxpool.Pool, ts []table) error {
	src, err := source.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer func() { _ = src.Rollback(context.WithoutCancel(ctx)) }()
	dst, err := target.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = dst.Rollback(context.WithoutCancel(ctx)) }()
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.quoted()
	}
	if len(names) > 0 {
		if _, err := dst.Exec(ctx, `TRUNCATE `+strings.Join(names, ", ")); err != nil {
			return err
		}
	}
	for _, t := range ts {
		if err := copyTable(ctx, src.Conn(), dst.Conn(), t); err != nil {
			return fmt.Errorf("copy %s: %w", t.name, err)
		}
	}
	return dst.Commit(ctx)
}

// copyTable streams one table from src to dst in binary COPY format.
func copyTable(ctx context.Context, src, dst *pgx.Conn, t table) error {
	r, w := io.Pipe()
	read := make(chan error, 1)
	go func() {
		_, err := src.PgConn().CopyTo(ctx, w, `COPY `+t.quoted()+` (`+t.columnList()+`) TO STDOUT (FORMAT binary)`)
		_ = w.CloseWithError(err)
		read <- err
	}()
	_, err := dst.PgConn().CopyFrom(ctx, r, `COPY `+t.quoted()+` (`+t.columnList()+`) FROM STDIN (FORMAT binary)`)
	_ = r.CloseWithError(errors.New("copy abandoned"))
	if rerr := <-read; rerr != nil && err == nil {
		err = rerr
	}
	return err
}

// catchUp applies to target some of the changes logged on source, at
// most limit of them, and returns how many it applied. Each logged key is
// copied as the source has it now: the row's current values, or its
// absence. Entries are taken out of the log as they are applied, in a
// transaction that commits only after the target's: a sequence orders
// entries by when they were written, not by when they committed, so one
// may appear behind another already read, and a position in the log would
// skip it; what is left in the log is what remains to apply.
func catchUp(ctx context.Context, source, target *pgxpool.Pool, ts []table, limit int) (int, error) {
	tx, err := source.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	rows, err := tx.Query(ctx, `
		DELETE FROM `+logTable+` WHERE seq IN (SELECT seq FROM `+logTable+` ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED)
		RETURNING tbl, key`, limit)
	if err != nil {
		return 0, err
	}
	keys := map[string]map[string]bool{}
	n := 0
	for rows.Next() {
		var table, key string
		if err := rows.Scan(&table, &key); err != nil {
			rows.Close()
			return 0, err
		}
		if keys[table] == nil {
			keys[table] = map[string]bool{}
		}
		keys[table][key] = true
		n++
	}
	rows.Close()
	if err := rows.Err(); err != nil || n == 0 {
		return 0, err
	}
	if err := apply(ctx, source, target, ts, keys); err != nil {
		return 0, err
	}
	return n, tx.Commit(ctx)
}

// apply makes target's rows of the given keys what source's are, in one
// transaction: rows gone from the source are deleted, children first;
// the others are inserted or updated, parents first.
func apply(ctx context.Context, source, target *pgxpool.Pool, ts []table, keys map[string]map[string]bool) error {
	tx, err := target.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	present := map[string][][]any{}
	gone := map[string][]string{}
	for _, t := range ts {
		set := keys[t.name]
		if len(set) == 0 {
			continue
		}
		list := make([]string, 0, len(set))
		for k := range set {
			list = append(list, k)
		}
		// The key also comes as text, the form the log holds it in.
		rows, err := source.Query(ctx, `SELECT `+pgx.Identifier{t.key}.Sanitize()+`::text, `+t.columnList()+` FROM `+t.quoted()+
			` WHERE `+pgx.Identifier{t.key}.Sanitize()+` = ANY($1::`+t.keyType+`[])`, list)
		if err != nil {
			return err
		}
		found := map[string]bool{}
		for rows.Next() {
			values, err := rows.Values()
			if err != nil {
				rows.Close()
				return err
			}
			key, _ := values[0].(string)
			present[t.name] = append(present[t.name], values[1:])
			found[key] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, k := range list {
			if !found[k] {
				gone[t.name] = append(gone[t.name], k)
			}
		}
	}
	for i := len(ts) - 1; i >= 0; i-- {
		t := ts[i]
		if len(gone[t.name]) == 0 {
			continue
		}
		if _, err := tx.Exec(ctx, `DELETE FROM `+t.quoted()+` WHERE `+pgx.Identifier{t.key}.Sanitize()+
			` = ANY($1::`+t.keyType+`[])`, gone[t.name]); err != nil {
			return fmt.Errorf("delete from %s: %w", t.name, err)
		}
	}
	for _, t := range ts {
		if len(present[t.name]) == 0 {
			continue
		}
		if err := upsert(ctx, tx, t, present[t.name]); err != nil {
			return fmt.Errorf("write %s: %w", t.name, err)
		}
	}
	return tx.Commit(ctx)
}

// upsert writes rows into t through a temporary table, replacing the rows
// whose keys exist.
func upsert(ctx context.Context, tx pgx.Tx, t table, rows [][]any) error {
	tmp := pgx.Identifier{"tenantry_move_" + t.name}
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE `+tmp.Sanitize()+` (LIKE `+t.quoted()+`) ON COMMIT DROP`); err != nil {
		return err
	}
	if _, err := tx.CopyFrom(ctx, tmp, t.columns, pgx.CopyFromRows(rows)); err != nil {
		return err
	}
	set := make([]string, 0, len(t.columns))
	for _, c := range t.columns {
		if c != t.key {
			q := pgx.Identifier{c}.Sanitize()
			set = append(set, q+" = EXCLUDED."+q)
		}
	}
	conflict := "DO NOTHING"
	if len(set) > 0 {
		conflict = "DO UPDATE SET " + strings.Join(set, ", ")
	}
	_, err := tx.Exec(ctx, `INSERT INTO `+t.quoted()+` (`+t.columnList()+`) SELECT `+t.columnList()+` FROM `+tmp.Sanitize()+
		` ON CONFLICT (`+pgx.Identifier{t.key}.Sanitize()+`) `+conflict)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `DROP TABLE `+tmp.Sanitize())
	return err
}

// syncSequences sets each sequence of target where source's is, so that
// the next id the target hands out follows the last one the source did.
func syncSequences(ctx context.Context, source, target *pgxpool.Pool) error {
	rows, err := source.Query(ctx, `
		SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'S' AND n.nspname = 'public' AND c.relname NOT LIKE 'tenantry_move_%'`)
	if err != nil {
		return err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, name := range names {
		var last int64
		var called bool
		if err := source.QueryRow(ctx, `SELECT last_value, is_called FROM `+pgx.Identifier{name}.Sanitize()).Scan(&last, &called); err != nil {
			return err
		}
		if _, err := target.Exec(ctx, `SELECT setval($1::regclass, $2, $3)`, pgx.Identifier{name}.Sanitize(), last, called); err != nil {
			return err
		}
	}
	return nil
}

// sameCounts checks that every table holds as many rows on both sides.
func sameCounts(ctx context.Context, source, target *pgxpool.Pool, ts []table) error {
	for _, t := range ts {
		var a, b int64
		if err := source.QueryRow(ctx, `SELECT count(*) FROM `+t.quoted()).Scan(&a); err != nil {
			return err
		}
		if err := target.QueryRow(ctx, `SELECT count(*) FROM `+t.quoted()).Scan(&b); err != nil {
			return err
		}
		if a != b {
			return fmt.Errorf("table %s: %d rows on the source, %d on the copy", t.name, a, b)
		}
	}
	return nil
}
