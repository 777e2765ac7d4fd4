package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tenantry/tenantry/sqldb"
)

func openTest(t *testing.T, opts Options) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "x.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.Exec(context.Background(), `CREATE TABLE c (name TEXT PRIMARY KEY, value INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return db
}

func cached(s *statements, query string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.byQuery[query]
	return ok
}

// On a database whose only connection a transaction holds, preparing a
// statement inside the transaction would wait for that connection forever;
// the transaction's first queries run unprepared and are prepared after it.
func TestTransactionsPrepareTheirStatementsAfterwards(t *testing.T) {
	t.Parallel()
	db := openTest(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const insert = `INSERT INTO c (name, value) VALUES ($1, $2)`
	const read = `SELECT value FROM c WHERE name = $1`
	for i := range 3 {
		err := db.InTx(ctx, func(tx sqldb.Tx) error {
			if _, err := tx.Exec(ctx, insert, fmt.Sprint("k", i), i); err != nil {
				return err
			}
			var v int
			if err := tx.QueryRow(ctx, read, fmt.Sprint("k", i)).Scan(&v); err != nil || v != i {
				return fmt.Errorf("read back %d: %v", v, err)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("transaction %d: %v", i, err)
		}
		if !cached(db.writeStmts, insert) || !cached(db.writeStmts, read) {
			t.Fatalf("after transaction %d the statements are not prepared", i)
		}
	}
	var n int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM c`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("count = %d, %v", n, err)
	}
}

// A prepared statement keeps working when the schema under it changes, and
// a statement that cannot be prepared reports its error.
func TestPreparedStatementsFollowTheSchema(t *testing.T) {
	t.Parallel()
	db := openTest(t, Options{ReadConns: 2})
	ctx := context.Background()
	if _, err := db.Exec(ctx, `INSERT INTO c VALUES ('a', 1)`); err != nil {
		t.Fatal(err)
	}
	const all = `SELECT * FROM c`
	columns := func() int {
		rs, err := db.Query(ctx, all)
		if err != nil {
			t.Fatal(err)
		}
		defer rs.Close()
		cols, err := rs.(rows).r.Columns()
		if err != nil {
			t.Fatal(err)
		}
		return len(cols)
	}
	if n := columns(); n != 2 {
		t.Fatalf("%d columns", n)
	}
	if _, err := db.Exec(ctx, `ALTER TABLE c ADD COLUMN note TEXT`); err != nil {
		t.Fatal(err)
	}
	if n := columns(); n != 3 {
		t.Fatalf("after ALTER TABLE the statement sees %d columns", n)
	}
	if err := db.QueryRow(ctx, `SELECT nothing FROM nowhere`).Scan(new(int)); err == nil {
		t.Fatal("a statement on a missing table ran")
	}
}

// Past its bound the cache stops growing and queries still run.
func TestTheStatementCacheIsBounded(t *testing.T) {
	t.Parallel()
	db := openTest(t, Options{})
	ctx := context.Background()
	for i := range maxStatements + 20 {
		var v int
		if err := db.QueryRow(ctx, fmt.Sprintf(`SELECT %d`, i)).Scan(&v); err != nil || v != i {
			t.Fatalf("query %d = %d, %v", i, v, err)
		}
	}
	db.readStmts.mu.RLock()
	n := len(db.readStmts.byQuery)
	db.readStmts.mu.RUnlock()
	if n != maxStatements {
		t.Fatalf("%d statements cached, want the bound %d", n, maxStatements)
	}
}
