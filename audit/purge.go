package audit

import (
	"context"
	"errors"
	"fmt"

	"github.com/tenantry/tenantry/sqldb"
)

// Purged is what PurgeChain removed: the chain's length and the hash of its
// last entry as its head recorded them, and the entries deleted.
type Purged struct {
	Chain    string
	HeadSeq  int64
	HeadHash string
	Entries  int64
}

// PurgeChain deletes every entry of a tenant's chain, and its head, in tx,
// a transaction of the control database. The database refuses to update or
// delete audit entries (a trigger on both engines); the transaction is
// allowed to for this one chain only, and only until it ends. The platform
// chain cannot be purged: it is where a purge leaves its tombstone.
func PurgeChain(ctx context.Context, tx sqldb.Tx, chain string) (Purged, error) {
	p := Purged{Chain: chain, HeadHash: GenesisHash}
	if chain == "" || chain == PlatformChain {
		return p, fmt.Errorf("purge audit chain %q: only a tenant's chain can be purged", chain)
	}
	err := tx.QueryRow(ctx, `SELECT last_seq, last_hash FROM audit_chains WHERE chain = $1`, chain).Scan(&p.HeadSeq, &p.HeadHash)
	if err != nil && !errors.Is(err, sqldb.ErrNoRows) {
		return p, fmt.Errorf("purge audit chain %s: %w", chain, err)
	}
	if err := allowChanges(ctx, tx, chain); err != nil {
		return p, fmt.Errorf("purge audit chain %s: %w", chain, err)
	}
	if p.Entries, err = tx.Exec(ctx, `DELETE FROM audit_log WHERE chain = $1`, chain); err != nil {
		return p, fmt.Errorf("purge audit chain %s: %w", chain, err)
	}
	if err := endChanges(ctx, tx, chain); err != nil {
		return p, fmt.Errorf("purge audit chain %s: %w", chain, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM audit_chains WHERE chain = $1`, chain); err != nil {
		return p, fmt.Errorf("purge audit chain %s: %w", chain, err)
	}
	return p, nil
}

// allowChanges lets tx change the entries of chain: PostgreSQL's trigger
// accepts a transaction-local setting naming the chain, SQLite's a row of
// audit_purges, which endChanges removes before the transaction ends.
func allowChanges(ctx context.Context, tx sqldb.Tx, chain string) error {
	if tx.Dialect() == sqldb.Postgres {
		var set string
		return tx.QueryRow(ctx, `SELECT set_config('tenantry.audit_purge', $1, true)`, chain).Scan(&set)
	}
	_, err := tx.Exec(ctx, `INSERT INTO audit_purges (chain) VALUES ($1)`, chain)
	return err
}

// endChanges withdraws what allowChanges granted, before the transaction
// ends, so that nothing later in it can change the chain's entries either.
func endChanges(ctx context.Context, tx sqldb.Tx, chain string) error {
	if tx.Dialect() == sqldb.Postgres {
		var set string
		return tx.QueryRow(ctx, `SELECT set_config('tenantry.audit_purge', '', true)`).Scan(&set)
	}
	_, err := tx.Exec(ctx, `DELETE FROM audit_purges WHERE chain = $1`, chain)
	return err
}
