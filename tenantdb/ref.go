package tenantdb

import "github.com/tenantry/tenantry"

// Ref names one tenant database: the server that holds it and its name on
// that server. The empty server is the default one: the only one of the
// embedded shape, and of a production shape with no servers registered (the
// one TENANT_DATABASE_URL_TEMPLATE points to).
type Ref struct {
	Server string
	Name   string
}

// String names the database in logs: server/name, or the name alone on the
// default server.
func (r Ref) String() string {
	if r.Server == "" {
		return r.Name
	}
	return r.Server + "/" + r.Name
}

// RefOf returns the database of a tenant.
func RefOf(t *tenantry.Tenant) Ref { return Ref{Server: t.Server, Name: t.DatabaseName} }
