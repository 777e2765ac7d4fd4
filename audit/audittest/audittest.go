// Package audittest helps tests play an intruder with write access to the
// control database, to show that the audit trail finds what was done.
package audittest

import (
	"context"
	"testing"

	"github.com/tenantry/tenantry/sqldb"
)

// Tamper runs stmt, which may update or delete entries of chain, in a
// transaction that passes the database's append-only guard the way the
// purge of a chain does: whoever can write to the database can do as
// much, which is why the chains are hashed and their heads signed.
func Tamper(t testing.TB, db sqldb.DB, chain, stmt string, args ...any) {
	t.Helper()
	ctx := context.Background()
	err := db.InTx(ctx, func(tx sqldb.Tx) error {
		if tx.Dialect() == sqldb.Postgres {
			var set string
			if err := tx.QueryRow(ctx, `SELECT set_config('tenantry.audit_purge', $1, true)`, chain).Scan(&set); err != nil {
				return err
			}
		} else if _, err := tx.Exec(ctx, `INSERT INTO audit_purges (chain) VALUES ($1)`, chain); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, stmt, args...); err != nil {
			return err
		}
		if tx.Dialect() == sqldb.SQLite {
			_, err := tx.Exec(ctx, `DELETE FROM audit_purges WHERE chain = $1`, chain)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("tamper with audit chain %s: %s: %v", chain, stmt, err)
	}
}
