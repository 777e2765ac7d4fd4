package audit_test

import (
	"testing"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/sqldb"
)

// Ensure the database itself refuses to update or delete audit entries, on
// both engines, inside a transaction or not.
func TestEntriesAreAppendOnlyInTheDatabase(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		db, _ := openControl(t, shape)
		l := audit.NewLog(db, testKey, nil)
		appendN(t, l, "guarded", 3)
		for _, stmt := range []string{
			`UPDATE audit_log SET action = 'test.other' WHERE chain = $1 AND seq = 2`,
			`UPDATE audit_log SET chain = 'elsewhere' WHERE chain = $1`,
			`DELETE FROM audit_log WHERE chain = $1 AND seq = 3`,
			`DELETE FROM audit_log WHERE chain = $1`,
		} {
			if _, err := db.Exec(t.Context(), stmt, "guarded"); err == nil {
				t.Errorf("%s: accepted", stmt)
			}
			err := db.InTx(t.Context(), func(tx sqldb.Tx) error {
				_, err := tx.Exec(t.Context(), stmt, "guarded")
				return err
			})
			if err == nil {
				t.Errorf("%s in a transaction: accepted", stmt)
			}
		}
		if shape == config.Production {
			if _, err := db.Exec(t.Context(), `TRUNCATE audit_log`); err == nil {
				t.Error("TRUNCATE audit_log: accepted")
			}
		}
		// Another chain's purge does not open this one.
		err := db.InTx(t.Context(), func(tx sqldb.Tx) error {
			if _, err := audit.PurgeChain(t.Context(), tx, "other"); err != nil {
				return err
			}
			_, err := tx.Exec(t.Context(), `DELETE FROM audit_log WHERE chain = $1`, "guarded")
			return err
		})
		if err == nil {
			t.Error("deleting a chain after purging another: accepted")
		}
		if v, err := l.Verify(t.Context(), "guarded"); err != nil || !v.Intact || v.Entries != 3 {
			t.Fatalf("the guarded chain changed: %+v, %v", v, err)
		}
	})
}

// Ensure PurgeChain removes a chain's entries and head and reports what they
// were, leaves other chains intact and refuses the platform chain.
func TestPurgeChain(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		db, _ := openControl(t, shape)
		l := audit.NewLog(db, testKey, nil)
		purged := appendN(t, l, "purged", 4)
		appendN(t, l, "kept", 2)
		appendN(t, l, audit.PlatformChain, 2)

		var got audit.Purged
		err := db.InTx(t.Context(), func(tx sqldb.Tx) error {
			var err error
			got, err = audit.PurgeChain(t.Context(), tx, "purged")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		last := purged[len(purged)-1]
		if got.Entries != 4 || got.HeadSeq != 4 || got.HeadHash != last.Hash {
			t.Fatalf("purged %+v, want 4 entries ending at %s", got, last.Hash)
		}
		var n int
		if err := db.QueryRow(t.Context(), `SELECT count(*) FROM audit_log WHERE chain = 'purged'`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d entries left, %v", n, err)
		}
		if err := db.QueryRow(t.Context(), `SELECT count(*) FROM audit_chains WHERE chain = 'purged'`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d heads left, %v", n, err)
		}
		chains, err := l.Chains(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range chains {
			if c == "purged" {
				t.Fatal("the purged chain is still listed")
			}
			if v, err := l.Verify(t.Context(), c); err != nil || !v.Intact {
				t.Fatalf("chain %s after the purge: %+v, %v", c, v, err)
			}
		}
		// Purging again finds nothing, and is no error.
		err = db.InTx(t.Context(), func(tx sqldb.Tx) error {
			var err error
			got, err = audit.PurgeChain(t.Context(), tx, "purged")
			return err
		})
		if err != nil || got.Entries != 0 || got.HeadSeq != 0 || got.HeadHash != audit.GenesisHash {
			t.Fatalf("purging again: %+v, %v", got, err)
		}
		err = db.InTx(t.Context(), func(tx sqldb.Tx) error {
			_, err := audit.PurgeChain(t.Context(), tx, audit.PlatformChain)
			return err
		})
		if err == nil {
			t.Fatal("the platform chain was purged")
		}
	})
}
