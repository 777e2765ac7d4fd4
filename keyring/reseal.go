package keyring

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tenantry/tenantry/sqldb"
)

// Sealed is one stored value sealed by the keyring, with what it was sealed
// for.
type Sealed struct {
	ID    string
	Scope string
	AAD   AAD
	Value []byte
}

// SealedValues is somewhere sealed values are stored: a column of a table.
// Every place the product stores a sealed secret is one, so that rotation
// can move them all to the newest key version and status can say which
// still use an older one.
type SealedValues interface {
	// Name names the place in reports, as table.column.
	Name() string
	// Batch returns up to n values, in a stable order of their ids, after
	// the id after ("" for the first).
	Batch(ctx context.Context, after string, n int) ([]Sealed, error)
	// Replace stores value in place of old for id, unless it no longer
	// holds old: what was written meanwhile is newer.
	Replace(ctx context.Context, id string, old, value []byte) error
}

// Column is a column of sealed values in a table of one database, one row
// per value, keyed by a text column.
type Column struct {
	DB                 sqldb.DB
	Table, Key, Column string
	// Scope is the scope of every value, or, with ScopeColumn set, the
	// column naming each row's.
	Scope, ScopeColumn string
	// AAD is what a row's value was sealed for.
	AAD func(id string) AAD
}

// Name implements SealedValues.
func (c Column) Name() string { return c.Table + "." + c.Column }

// Batch implements SealedValues.
func (c Column) Batch(ctx context.Context, after string, n int) ([]Sealed, error) {
	scope := "''"
	if c.ScopeColumn != "" {
		scope = c.ScopeColumn
	}
	rows, err := c.DB.Query(ctx, `SELECT `+c.Key+`, `+scope+`, `+c.Column+` FROM `+c.Table+`
		WHERE `+c.Column+` IS NOT NULL AND `+c.Key+` > $1 ORDER BY `+c.Key+` `+sqldb.Limit(n), after)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Sealed
	for rows.Next() {
		var s Sealed
		if err := rows.Scan(&s.ID, &s.Scope, &s.Value); err != nil {
			return nil, err
		}
		if c.ScopeColumn == "" {
			s.Scope = c.Scope
		}
		s.AAD = c.AAD(s.ID)
		out = append(out, s)
	}
	return out, rows.Err()
}

// Replace implements SealedValues.
func (c Column) Replace(ctx context.Context, id string, old, value []byte) error {
	_, err := c.DB.Exec(ctx, `UPDATE `+c.Table+` SET `+c.Column+` = $1 WHERE `+c.Key+` = $2 AND `+c.Column+` = $3`, value, id, old)
	return err
}

// Reseal moves up to batch values of values, those after the id after, that
// an older key version sealed to the newest version of their scope's key,
// and returns the id to go on from ("" when done) and how many it moved.
// Moving a value twice is harmless, so a pass cut short is resumed from
// its last id, or started again.
func (k *Keyring) Reseal(ctx context.Context, values SealedValues, after string, batch int) (next string, moved int, err error) {
	list, err := values.Batch(ctx, after, batch)
	if err != nil {
		return after, 0, err
	}
	for _, s := range list {
		newest, _, err := k.current(ctx, s.Scope)
		if err != nil {
			return after, moved, err
		}
		version, err := SealedVersion(s.Value)
		if err != nil {
			return after, moved, fmt.Errorf("%s %s: %w", values.Name(), s.ID, err)
		}
		if version < newest {
			plain, err := k.Decrypt(ctx, s.Scope, s.Value, s.AAD)
			if err != nil {
				return after, moved, fmt.Errorf("%s %s: %w", values.Name(), s.ID, err)
			}
			resealed, err := k.Encrypt(ctx, s.Scope, plain, s.AAD)
			clear(plain)
			if err != nil {
				return after, moved, err
			}
			if err := values.Replace(ctx, s.ID, s.Value, resealed); err != nil {
				return after, moved, err
			}
			moved++
		}
		after = s.ID
	}
	if len(list) < batch {
		return "", moved, nil
	}
	return after, moved, nil
}

// OldVersionUse is how many values of one place one older key version of a
// scope still seals.
type OldVersionUse struct {
	Values  string
	Scope   string
	Version int
	Count   int
}

// OldVersionsInUse counts, in every place, the values sealed with a key
// version older than their scope's newest.
func (k *Keyring) OldVersionsInUse(ctx context.Context, places []SealedValues) ([]OldVersionUse, error) {
	newest := map[string]int{}
	status, err := k.Status(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range status {
		newest[s.Scope] = s.Newest
	}
	var out []OldVersionUse
	for _, place := range places {
		counts := map[Position]int{}
		for after := ""; ; {
			list, err := place.Batch(ctx, after, resealBatch)
			if err != nil {
				return nil, err
			}
			for _, s := range list {
				if v, err := SealedVersion(s.Value); err == nil && v < newest[s.Scope] {
					counts[Position{Scope: s.Scope, Version: v}]++
				}
				after = s.ID
			}
			if len(list) < resealBatch {
				break
			}
		}
		for pos, n := range counts {
			out = append(out, OldVersionUse{Values: place.Name(), Scope: pos.Scope, Version: pos.Version, Count: n})
		}
	}
	return out, nil
}

// resealBatch is how many values one step of a pass reads.
const resealBatch = 200

// MaintainReport says what Maintain did.
type MaintainReport struct {
	Rotated   []string
	Rewrapped int
	Resealed  int
}

// Maintain rotates every scope whose newest key is older than rotateAfter
// (none when it is zero), then moves every stored data key to the newest
// wrapping key and every value of places to its scope's newest data key,
// in batches. It is what the scheduled key job runs, and what follows a
// rotation by hand; run again after a failure, it takes up where the work
// stands.
func (k *Keyring) Maintain(ctx context.Context, rotateAfter time.Duration, places []SealedValues) (MaintainReport, error) {
	var rep MaintainReport
	if rotateAfter > 0 {
		status, err := k.Status(ctx)
		if err != nil {
			return rep, err
		}
		for _, s := range status {
			if time.Since(s.NewestAt) < rotateAfter {
				continue
			}
			if _, err := k.Rotate(ctx, s.Scope); err != nil {
				return rep, err
			}
			rep.Rotated = append(rep.Rotated, s.Scope)
		}
	}
	for pos := (Position{}); ; {
		next, n, err := k.Rewrap(ctx, pos, resealBatch)
		rep.Rewrapped += n
		if err != nil {
			return rep, err
		}
		if next == (Position{}) {
			break
		}
		pos = next
	}
	var errs []error
	for _, place := range places {
		for after := ""; ; {
			next, n, err := k.Reseal(ctx, place, after, resealBatch)
			rep.Resealed += n
			if err != nil {
				// A value that cannot be moved stays on its version,
				// which keeps decrypting; the others still move.
				errs = append(errs, err)
				break
			}
			if next == "" {
				break
			}
			after = next
		}
	}
	return rep, errors.Join(errs...)
}
