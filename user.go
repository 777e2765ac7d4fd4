package tenantry

import "time"

// User is an account. The password hash never leaves the account package.
type User struct {
	ID            string
	Email         string
	FirstName     string
	LastName      string
	IsActive      bool
	PlatformAdmin bool
	CreatedAt     time.Time
	UpdatedAt     time.Time
}
