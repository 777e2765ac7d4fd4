package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/tenantry/tenantry/sqlite"
)

// Statements that write and return rows must reach the writer even when
// read connections exist.
func TestWritesThatReturnRowsUseTheWriter(t *testing.T) {
	t.Parallel()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "x.db"), sqlite.Options{ReadConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if _, err := db.Exec(ctx, `CREATE TABLE c (name TEXT PRIMARY KEY, value INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO c VALUES ('a', 1)`); err != nil {
		t.Fatal(err)
	}
	var v int
	if err := db.QueryRow(ctx, `UPDATE c SET value = value + 1 WHERE name = $1 RETURNING value`, "a").Scan(&v); err != nil || v != 2 {
		t.Fatalf("UPDATE ... RETURNING = %d, %v", v, err)
	}
	if err := db.QueryRow(ctx, ` select value from c where name = $1`, "a").Scan(&v); err != nil || v != 2 {
		t.Fatalf("SELECT = %d, %v", v, err)
	}
	if _, err := db.Query(ctx, `INSERT INTO c VALUES ('b', 5) RETURNING value`); err != nil {
		t.Fatalf("INSERT ... RETURNING through Query: %v", err)
	}
}
