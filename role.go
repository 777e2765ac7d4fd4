package tenantry

// Role is a member's role within one tenant: a built-in role (admin, user,
// viewer) or one of the tenant's custom roles, by name. What it grants is in
// package permission.
type Role string

// The built-in roles, from most to least privileged.
const (
	RoleAdmin  Role = "admin"
	RoleUser   Role = "user"
	RoleViewer Role = "viewer"
)
