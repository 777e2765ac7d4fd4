package sso

import (
	"github.com/tenantry/tenantry/keyring"
	"github.com/tenantry/tenantry/sqldb"
)

// SealedValues are where single sign-on keeps sealed secrets (client
// secrets and provider tokens), each sealed with its tenant's key, for the
// keyring's rotation and status. Ids are UUIDs, compared as text.
func SealedValues(control sqldb.DB) []keyring.SealedValues {
	column := func(table, name string, aad func(id string) keyring.AAD) keyring.SealedValues {
		return keyring.Column{DB: control, Table: table, Key: "CAST(id AS TEXT)", Column: name,
			ScopeColumn: "CAST(tenant_id AS TEXT)", AAD: aad}
	}
	token := func(name string) func(string) keyring.AAD {
		return func(id string) keyring.AAD { return tokenAAD(id, name) }
	}
	return []keyring.SealedValues{
		column(tableConfigs, "client_secret", secretAAD),
		column(tableIdentities, "access_token", token("access_token")),
		column(tableIdentities, "refresh_token", token("refresh_token")),
	}
}
