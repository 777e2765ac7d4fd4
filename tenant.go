package tenantry

import "time"

// Tenant is an organisation whose data lives in its own database.
type Tenant struct {
	ID           string
	Name         string
	DatabaseName string
	// Server names the database server that holds the tenant's database;
	// empty for the default one.
	Server    string
	IsActive  bool
	CreatedAt time.Time
	UpdatedAt time.Time
	CreatedBy string
}

// Membership links a user to a tenant with a role.
type Membership struct {
	TenantID string
	UserID   string
	Role     Role
	JoinedAt time.Time
}
