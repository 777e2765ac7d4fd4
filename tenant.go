package tenantry

import (
	"time"

	"github.com/tenantry/tenantry/permission"
)

// Tenant is an organisation whose data lives in its own database.
type Tenant struct {
	ID           string
	Name         string
	DatabaseName string
	// Server names the database server that holds the tenant's database;
	// empty for the default one.
	Server   string
	IsActive bool
	// AuthMethod is how members sign in: AuthLocal, AuthSSO or AuthBoth.
	// Only read where a request needs it (the tenant's own routes).
	AuthMethod string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	CreatedBy  string
}

// How the members of a tenant sign in.
const (
	// AuthLocal is with passwords only.
	AuthLocal = "local"
	// AuthSSO is only through the tenant's identity provider: sessions
	// opened with a password may list the tenant but not act in it.
	AuthSSO = "sso"
	// AuthBoth is either way.
	AuthBoth = "both"
)

// Membership links a user to a tenant with a role.
type Membership struct {
	TenantID string
	UserID   string
	Role     Role
	JoinedAt time.Time
	// ExpiresAt is when the role, and with it the membership, ends; zero
	// for never.
	ExpiresAt time.Time
	// Permissions are what the role grants, when read for a decision.
	Permissions permission.Set
}
