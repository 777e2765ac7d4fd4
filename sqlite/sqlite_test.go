package sqlite_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/tenantry/tenantry/sqldb"
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

// Ensure a database that must exist is never recreated empty: not at open,
// and not by a connection opened after its file went away.
func TestMustExistNeverCreatesTheFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tenant.db")
	if _, err := sqlite.Open(path, sqlite.Options{MustExist: true}); !errors.Is(err, sqldb.ErrUnavailable) {
		t.Fatalf("opening a missing file: %v, want ErrUnavailable", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("opening a missing file created it (%v)", err)
	}

	created, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := created.Exec(ctx, `CREATE TABLE t (v INTEGER)`); err != nil {
		t.Fatal(err)
	}
	created.Close()
	db, err := sqlite.Open(path, sqlite.Options{ReadConns: 1, MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := os.Rename(path, path+".moved"); err != nil {
		t.Fatal(err)
	}
	// The read connection opens only now, after the file left.
	var n int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&n); !errors.Is(err, sqldb.ErrUnavailable) {
		t.Fatalf("reading after the file went away: %d, %v; want ErrUnavailable", n, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a later connection recreated the file (%v)", err)
	}
}

// Ensure every connection, the writer's and the readers', gets the page
// cache asked for, and none is asked for by default.
func TestCacheSizeAppliesToEveryConnection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, c := range []struct{ kib, want int }{{128, -128}, {0, -2000}} {
		db, err := sqlite.Open(filepath.Join(t.TempDir(), "x.db"), sqlite.Options{ReadConns: 2, CacheKiB: c.kib})
		if err != nil {
			t.Fatal(err)
		}
		var read, written int
		if err := db.QueryRow(ctx, `PRAGMA cache_size`).Scan(&read); err != nil {
			t.Fatal(err)
		}
		err = db.InTx(ctx, func(tx sqldb.Tx) error { return tx.QueryRow(ctx, `PRAGMA cache_size`).Scan(&written) })
		if err != nil {
			t.Fatal(err)
		}
		if read != c.want || written != c.want {
			t.Errorf("CacheKiB %d: cache_size %d on a reader, %d on the writer; want %d", c.kib, read, written, c.want)
		}
		db.Close()
	}
}

// Ensure the page caches of tenant connections fit their budget at any
// connection cap, within SQLite's default and a useful minimum.
func TestTenantCacheFitsTheCap(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ cap, want int }{{768, 128}, {1, 2000}, {40, 2000}, {100, 983}, {3000, 64}, {0, 2000}} {
		if got := sqlite.TenantCacheKiB(c.cap); got != c.want {
			t.Errorf("TenantCacheKiB(%d) = %d, want %d", c.cap, got, c.want)
		}
		if c.cap >= 768 && c.cap*sqlite.TenantCacheKiB(c.cap) > 96<<10 && sqlite.TenantCacheKiB(c.cap) > 64 {
			t.Errorf("cap %d: caches may reach %d KiB", c.cap, c.cap*sqlite.TenantCacheKiB(c.cap))
		}
	}
}
