package app

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/tenantry/tenantry/sealedblob"
	"github.com/tenantry/tenantry/sqldb"
)

// tenantScopes names the tenant whose keys seal a blob: blobs live under
// their tenant's database name, which names one tenant for as long as the
// tenant exists, so what was looked up once is kept.
func tenantScopes(control sqldb.DB) sealedblob.ScopeFunc {
	var known sync.Map
	return func(ctx context.Context, keyOrPrefix string) (string, error) {
		database, err := sealedblob.TenantDatabase(keyOrPrefix)
		if err != nil {
			return "", err
		}
		if id, ok := known.Load(database); ok {
			return id.(string), nil
		}
		var id string
		err = control.QueryRow(ctx, `SELECT id FROM tenants WHERE database_name = $1`, database).Scan(&id)
		if errors.Is(err, sqldb.ErrNoRows) {
			return "", fmt.Errorf("%w: no tenant has database %q", sealedblob.ErrNoScope, database)
		} else if err != nil {
			return "", err
		}
		known.Store(database, id)
		return id, nil
	}
}
