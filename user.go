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
	// EmailVerified is whether the account proved it receives mail at
	// Email (a verification link, a password reset, an invitation).
	EmailVerified bool
	// Locale is the language of its mails: en or fr.
	Locale    string
	CreatedAt time.Time
	UpdatedAt time.Time
}
