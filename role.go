package tenantry

// Role is a member's role within one tenant.
type Role string

// The roles, from most to least privileged.
const (
	RoleAdmin  Role = "admin"
	RoleUser   Role = "user"
	RoleViewer Role = "viewer"
)

// Valid reports whether r is one of the defined roles.
func (r Role) Valid() bool {
	switch r {
	case RoleAdmin, RoleUser, RoleViewer:
		return true
	}
	return false
}

// AtLeast reports whether r grants everything min grants.
func (r Role) AtLeast(min Role) bool {
	return r.rank() >= min.rank()
}

func (r Role) rank() int {
	switch r {
	case RoleAdmin:
		return 3
	case RoleUser:
		return 2
	case RoleViewer:
		return 1
	}
	return 0
}
